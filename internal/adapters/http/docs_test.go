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
	"github.com/flashsale/flashsale/web/docs"
)

// TestDocs: Swagger UI is served at /docs from the embedded files, under a CSP that allows this
// origin's scripts only, every file index.html loads is there, and directories are not listed.
// (tests/browser/docs.test.mjs runs it in Chromium.)
func TestDocs(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	router, err := httpadapter.NewRouter(httpadapter.NewServer(nil, log, httpadapter.CookieConfig{}),
		fakeAuthenticator{}, allowAll{}, log, httpadapter.RouterConfig{MaxBodyBytes: 1024, Docs: docs.Files})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (*http.Response, string) {
		w := httptest.NewRecorder()
		router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(w.Result().Body)
		return w.Result(), string(body)
	}

	res, index := get("/docs")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("/docs CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("/docs CSP %q allows something unsafe", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("/docs lost the security headers: %v", res.Header)
	}
	if regexp.MustCompile(`<script(\s[^>]*)?>[^<]`).MatchString(index) || !strings.Contains(index, `src="/docs/init.js"`) {
		t.Errorf("index.html must load its scripts from files, with no inline script")
	}
	if res, body := get("/docs/"); res.StatusCode != http.StatusOK || body != index {
		t.Errorf("GET /docs/: %d", res.StatusCode)
	}

	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
	refs := regexp.MustCompile(`(?:src|href)="(/docs/[^"]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 5 {
		t.Fatalf("index.html loads %d files from /docs/, want the bundle, init.js, the styles and icons", len(refs))
	}
	for _, ref := range refs {
		res, body := get(ref[1])
		ext := ref[1][strings.LastIndex(ref[1], "."):]
		if res.StatusCode != http.StatusOK || len(body) == 0 || !strings.HasPrefix(res.Header.Get("Content-Type"), wantType[ext]) {
			t.Errorf("GET %s: %d %q, %d bytes", ref[1], res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
		if res.Header.Get("Content-Security-Policy") != csp {
			t.Errorf("GET %s: CSP %q", ref[1], res.Header.Get("Content-Security-Policy"))
		}
	}

	for _, path := range []string{"/docs/swagger-ui/", "/docs/swagger-ui", "/docs/no-such-file.js", "/docs/../openapi.yaml"} {
		if res, body := get(path); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "problems/not-found") {
			t.Errorf("GET %s: %d %s, want a 404 problem", path, res.StatusCode, body)
		}
	}
}
