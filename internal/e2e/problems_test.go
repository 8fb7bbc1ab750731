package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testutil"
	"github.com/flashsale/flashsale/openapi"
)

// rawExchange sends request bytes as they are (what no HTTP client would send) and reads the
// one answer. The request is written while the answer is read: the server may answer and hang up
// before it has read all of it.
func rawExchange(t *testing.T, base, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, request) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer to %.60q: %v", request, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the body of the answer to %.60q: %v", request, err)
	}
	return resp, body
}

// expectProblemAnswer fails unless the answer is a problem document of status and type, with the
// API's security headers and no-store.
func expectProblemAnswer(t *testing.T, what string, header http.Header, body []byte, status int, problem string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json: %s", what, ct, body)
		return
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("%s: not a JSON problem: %v: %s", what, err, body)
		return
	}
	if p.Status != status || p.Type != "https://flashsale.dev/problems/"+problem || p.Title == "" {
		t.Errorf("%s: problem %+v, want %d %s", what, p, status, problem)
	}
	for name, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
		if got := header.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
}

// TestEveryErrorIsAProblem: the errors net/http's server answers itself, before any handler
// runs, and those the libraries behind the API write (file server, WebSocket handshake) are
// application/problem+json like every other error.
func TestEveryErrorIsAProblem(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)

	huge := "X-Padding: " + strings.Repeat("a", 1<<20+8<<10) + "\r\n"
	for _, tc := range []struct {
		name, request string
		status        int
		problem       string
	}{
		{"a control character in a header", "GET /v1/sales HTTP/1.1\r\nHost: api\r\nX-Note: a\x01b\r\n\r\n", 400, "invalid-request"},
		{"a bad % escape in the path", "GET /v1/sales/%zz HTTP/1.1\r\nHost: api\r\n\r\n", 400, "invalid-request"},
		{"two Content-Lengths", "POST /v1/auth/login HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "invalid-request"},
		{"no Host", "GET /v1/sales HTTP/1.1\r\n\r\n", 400, "invalid-request"},
		{"a malformed request line", "GET\r\n\r\n", 400, "invalid-request"},
		{"a space in a header name", "GET /v1/sales HTTP/1.1\r\nHost: api\r\nX Note: a\r\n\r\n", 400, "invalid-request"},
		{"headers over the server's 1 MiB", "GET /v1/sales HTTP/1.1\r\nHost: api\r\n" + huge + "\r\n", 431, "headers-too-large"},
		{"an unknown transfer coding", "POST /v1/auth/login HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not-implemented"},
		{"HTTP/2.0 in the request line", "GET /v1/sales HTTP/2.0\r\nHost: api\r\n\r\n", 505, "http-version-not-supported"},
		{"an expectation other than 100-continue", "GET /v1/sales HTTP/1.1\r\nHost: api\r\nExpect: the-unexpected\r\n\r\n", 417, "expectation-failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, sys.URL, tc.request)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			expectProblemAnswer(t, tc.name, resp.Header, body, tc.status, tc.problem)
			if n, err := strconv.Atoi(resp.Header.Get("Content-Length")); err != nil || n != len(body) {
				t.Errorf("Content-Length %q for a body of %d bytes", resp.Header.Get("Content-Length"), len(body))
			}
		})
	}

	// Errors written by the file server and the WebSocket handshake.
	for _, tc := range []struct {
		name    string
		req     testutil.Request
		status  int
		problem string
	}{
		{"a storefront file that does not exist", testutil.Request{Method: "GET", Path: "/assets/nope.js"}, 404, "not-found"},
		{"a range past the end of a file", testutil.Request{Method: "GET", Path: "/assets/app.js", Header: map[string]string{"Range": "bytes=999999999-"}}, 416, "range-not-satisfiable"},
		{"a precondition that fails", testutil.Request{Method: "GET", Path: "/assets/app.js", Header: map[string]string{"If-Match": `"not-this-file"`}}, 412, "precondition-failed"},
		{"live events without the WebSocket handshake", testutil.Request{Method: "GET", Path: "/v1/ws?tenant=default"}, 426, "upgrade-required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Do(t, tc.req)
			if r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
			expectProblemAnswer(t, tc.name, r.Header, r.Body, tc.status, tc.problem)
		})
	}

	// A well-formed request on a connection still gets its ordinary answer.
	if resp, body := rawExchange(t, sys.URL, "GET /v1/sales HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"); resp.StatusCode != 200 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("a well-formed raw request: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestHeadOnEveryGet: HEAD is answered on every path that answers GET, with the GET's status and
// headers and no body; a method a path does not take is 405 naming those it does, HEAD included.
func TestHeadOnEveryGet(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	_, admin := sys.Admin(t)
	sale := sys.CreateSale(t, 10, 2, -time.Minute, time.Hour)
	shopper := sys.TokenFor(t, sys.CreateUsers(t, 1, "shopper")[0])
	placed := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/sales/" + sale.Sale.ID.String() + "/orders", Token: shopper,
		Header: map[string]string{"Idempotency-Key": "head-order-0001"}, Body: map[string]any{"quantity": 1}})
	if placed.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", placed.Status, placed.Body)
	}

	// Every GET of the spec, with its parameters filled in, plus what the API serves beside it.
	fill := strings.NewReplacer("{saleId}", sale.Sale.ID.String(), "{orderId}", strings.TrimPrefix(placed.Header.Get("Location"), "/v1/orders/"))
	var paths []string
	for _, line := range strings.Split(string(openapi.Spec), "\n") {
		if strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":") {
			paths = append(paths, fill.Replace(strings.TrimSuffix(strings.TrimSpace(line), ":")))
		}
	}
	if len(paths) < 15 {
		t.Fatalf("found %d paths in the spec", len(paths))
	}
	paths = append(paths, "/", "/assets/app.js", "/admin", "/assets/admin.js", "/docs", "/docs/init.js", "/openapi.yaml", "/metrics",
		"/v1/sales?status=nope", "/v1/nope")
	// The figures change with every request: /metrics and the control room's overview.
	live := map[string]bool{"/metrics": true, "/v1/admin/overview": true}
	for _, path := range paths {
		for _, token := range []string{"", shopper, admin} {
			get := c.Do(t, testutil.Request{Method: "GET", Path: path, Token: token})
			if get.Status == http.StatusMethodNotAllowed {
				continue // not a GET path
			}
			head := c.Do(t, testutil.Request{Method: "HEAD", Path: path, Token: token})
			if head.Status != get.Status || len(head.Body) != 0 {
				t.Errorf("HEAD %s: %d with %d bytes; GET: %d", path, head.Status, len(head.Body), get.Status)
				continue
			}
			for _, name := range []string{"Content-Type", "Cache-Control", "Content-Security-Policy", "Allow"} {
				if head.Header.Get(name) != get.Header.Get(name) {
					t.Errorf("HEAD %s: %s %q, GET: %q", path, name, head.Header.Get(name), get.Header.Get(name))
				}
			}
			if get.Status == http.StatusOK && !live[path] && head.Header.Get("Content-Length") != strconv.Itoa(len(get.Body)) &&
				head.Header.Get("Content-Length") != "" {
				t.Errorf("HEAD %s: Content-Length %q, GET sent %d bytes", path, head.Header.Get("Content-Length"), len(get.Body))
			}
		}
	}

	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/sales", "GET, HEAD"},
		{"POST", "/v1/me", "GET, HEAD"},
		{"HEAD", "/v1/auth/login", "POST"},
		{"GET", "/v1/admin/sales/" + sale.Sale.ID.String(), "PATCH"},
		{"PUT", "/", "GET, HEAD"},
	} {
		r := c.Do(t, testutil.Request{Method: tc.method, Path: tc.path, Token: admin})
		if tc.method == "HEAD" {
			if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != tc.allow || len(r.Body) != 0 {
				t.Errorf("HEAD %s: %d, Allow %q, %d bytes", tc.path, r.Status, r.Header.Get("Allow"), len(r.Body))
			}
			continue
		}
		expectProblem(t, tc.method+" "+tc.path, r, http.StatusMethodNotAllowed, "method-not-allowed")
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}
