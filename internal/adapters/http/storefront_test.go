package http_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
	"github.com/flashsale/flashsale/web"
)

// TestControlRoomPage: the control room is served at /admin from the embedded files, under the
// storefront's CSP, with no inline script or style, and every file it loads is there.
// (tests/browser/admin.test.mjs runs it in Chromium.)
func TestControlRoomPage(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	router, err := httpadapter.NewRouter(httpadapter.NewServer(nil, log, httpadapter.CookieConfig{}),
		fakeAuthenticator{}, allowAll{}, log, httpadapter.RouterConfig{MaxBodyBytes: 1024, Storefront: web.Files})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (*http.Response, string) {
		w := httptest.NewRecorder()
		router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(w.Result().Body)
		return w.Result(), string(body)
	}
	res, store := get("/")
	var page string
	storeCSP := res.Header.Get("Content-Security-Policy")
	res, page = get("/admin")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || page == store {
		t.Fatalf("GET /admin: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	if csp == "" || csp != storeCSP || strings.Contains(csp, "unsafe") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("/admin CSP %q (storefront's %q), headers %v", csp, storeCSP, res.Header)
	}
	if regexp.MustCompile(`<script(\s[^>]*)?>[^<]|<style|\sstyle=`).MatchString(page) {
		t.Errorf("admin.html has inline script or style")
	}
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 3 {
		t.Fatalf("admin.html loads %d assets, want app.css, admin.css and admin.js", len(refs))
	}
	for _, ref := range refs {
		if res, body := get(ref[1]); res.StatusCode != http.StatusOK || body == "" || res.Header.Get("Content-Security-Policy") != csp {
			t.Errorf("GET %s: %d, %d bytes, CSP %q", ref[1], res.StatusCode, len(body), res.Header.Get("Content-Security-Policy"))
		}
	}
}
