package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/testutil"
)

// headerInt reads an integer header, failing t if it is missing or not a number.
func headerInt(t *testing.T, r testutil.Response, name string) int {
	t.Helper()
	v, err := strconv.Atoi(r.Header.Get(name))
	if err != nil {
		t.Fatalf("header %s = %q: %v (status %d)", name, r.Header.Get(name), err, r.Status)
	}
	return v
}

// expectRateLimited fails unless r is a 429 rate-limited problem with its headers.
func expectRateLimited(t *testing.T, what string, r testutil.Response, limit int) {
	t.Helper()
	expectProblem(t, what, r, http.StatusTooManyRequests, "rate-limited")
	if ra := headerInt(t, r, "Retry-After"); ra <= 0 || ra > 60 {
		t.Fatalf("%s: Retry-After %d", what, ra)
	}
	if l := headerInt(t, r, "RateLimit-Limit"); l != limit {
		t.Fatalf("%s: RateLimit-Limit %d, want %d", what, l, limit)
	}
	if rem := headerInt(t, r, "RateLimit-Remaining"); rem != 0 {
		t.Fatalf("%s: RateLimit-Remaining %d, want 0", what, rem)
	}
	if reset := headerInt(t, r, "RateLimit-Reset"); reset <= 0 || reset > 60 {
		t.Fatalf("%s: RateLimit-Reset %d", what, reset)
	}
	if p := r.JSON(t); p["status"] != 429.0 {
		t.Fatalf("%s: problem %v", what, p)
	}
}

// badRefresh is an auth call that is cheap and always answered 401 when not limited.
func badRefresh(header map[string]string) testutil.Request {
	return testutil.Request{Method: "POST", Path: "/v1/auth/refresh", Header: header,
		Body: map[string]any{"refreshToken": "0198f2a4-0000-7000-8000-000000000000.not-a-real-secret"}}
}

// TestRateLimitSharedAcrossAPINodes: the auth budget of a client IP lives in Redis, so two API
// nodes together grant it exactly once: 12 logins spread over two nodes with a limit of 10 give
// 10 answers and 2 refusals.
func TestRateLimitSharedAcrossAPINodes(t *testing.T) {
	t.Parallel()
	const limit = 10
	a := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true,
		Configure: func(c *config.Config) { c.RateLimitAuth = limit }})
	b := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, DatabaseURL: a.Config.DatabaseURL,
		Redis:     &testutil.Redis{Prefix: a.Config.RedisPrefix, Queue: a.Config.OrderQueue},
		Configure: func(c *config.Config) { c.RateLimitAuth = limit }})
	nodes := []*testutil.Client{testutil.NewClient(a.URL), testutil.NewClient(b.URL)}

	// GCRA refills one request every 6 s at 10/min: the 12 calls must fit well inside that.
	start := time.Now()
	var answered, limited int
	for i := range 12 {
		pw := testutil.AdminPassword
		if i%2 == 1 {
			pw = "wrong-password-here"
		}
		r := nodes[i%2].Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
			Body: map[string]any{"email": a.Config.AdminEmail, "password": pw}})
		switch {
		case i < limit:
			want := http.StatusOK
			if i%2 == 1 {
				want = http.StatusUnauthorized
			}
			if r.Status != want {
				t.Fatalf("login %d (node %d): %d %s, want %d", i+1, i%2, r.Status, r.Body, want)
			}
			if l, rem := headerInt(t, r, "RateLimit-Limit"), headerInt(t, r, "RateLimit-Remaining"); l != limit || rem != limit-1-i {
				t.Fatalf("login %d: RateLimit-Limit %d Remaining %d, want %d and %d", i+1, l, rem, limit, limit-1-i)
			}
			if reset := headerInt(t, r, "RateLimit-Reset"); reset <= 0 || reset > 60 {
				t.Fatalf("login %d: RateLimit-Reset %d", i+1, reset)
			}
			answered++
		default:
			expectRateLimited(t, "login "+strconv.Itoa(i+1), r, limit)
			limited++
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("12 logins took %s: the limiter may have refilled, the counts prove nothing", took)
	}
	if answered != 10 || limited != 2 {
		t.Fatalf("answered %d, limited %d; want 10 and 2", answered, limited)
	}
	// Only /v1/auth/* and purchases are limited: the client can still browse on both nodes.
	for i, c := range nodes {
		if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales"}); r.Status != http.StatusOK || r.Header.Get("RateLimit-Limit") != "" {
			t.Fatalf("GET /v1/sales on node %d after the auth limit: %d, RateLimit-Limit %q", i, r.Status, r.Header.Get("RateLimit-Limit"))
		}
	}
}

// TestRateLimitPurchases: the purchase budget of a client IP is RATE_LIMIT_PURCHASE_PER_MIN; the
// refused purchase reserves nothing.
func TestRateLimitPurchases(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true,
		Configure: func(c *config.Config) { c.RateLimitPurchase = 3 }})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 100, 10, -time.Second, time.Hour)
	token := sys.TokenFor(t, sys.CreateUsers(t, 1, "shopper")[0])

	for i := range 4 {
		r := c.Do(t, purchase(sale.Sale.ID, token, "rl-purchase-"+strconv.Itoa(i)+"-key", quantityBody(1)))
		if i < 3 {
			if r.Status != http.StatusAccepted {
				t.Fatalf("purchase %d: %d %s", i+1, r.Status, r.Body)
			}
			if rem := headerInt(t, r, "RateLimit-Remaining"); rem != 2-i {
				t.Fatalf("purchase %d: RateLimit-Remaining %d, want %d", i+1, rem, 2-i)
			}
			continue
		}
		expectRateLimited(t, "purchase 4", r, 3)
	}
	inv := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales/" + sale.Sale.ID.String() + "/inventory"}).JSON(t)
	if inv["remaining"] != 97.0 {
		t.Fatalf("inventory after 3 accepted and 1 limited purchase: %v", inv)
	}
	// Auth calls have their own (here unlimited) budget.
	if r := c.Do(t, badRefresh(nil)); r.Status != http.StatusUnauthorized {
		t.Fatalf("auth call after the purchase limit: %d %s", r.Status, r.Body)
	}
}

// TestForwardedForAndTrustedProxies: behind a trusted proxy each client (X-Forwarded-For) has its
// own budget, taken from the right-most untrusted hop; without trusted proxies the header is
// ignored, so a client cannot dodge the limit by inventing it.
func TestForwardedForAndTrustedProxies(t *testing.T) {
	t.Parallel()
	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, Configure: func(c *config.Config) {
			c.RateLimitAuth, c.TrustedProxies = 2, []string{"127.0.0.1/32"}
		}})
		c := testutil.NewClient(sys.URL)
		xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
		for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
			for i := range 2 {
				if r := c.Do(t, badRefresh(xff(ip))); r.Status != http.StatusUnauthorized {
					t.Fatalf("client %s call %d: %d %s, want 401", ip, i+1, r.Status, r.Body)
				}
			}
			expectRateLimited(t, "client "+ip+" call 3", c.Do(t, badRefresh(xff(ip))), 2)
		}
		// The proxy's own requests (no X-Forwarded-For) are a third client.
		if r := c.Do(t, badRefresh(nil)); r.Status != http.StatusUnauthorized {
			t.Fatalf("the proxy itself: %d %s", r.Status, r.Body)
		}

		// A chain: the client wrote 198.51.100.9, our proxy appended the address it saw.
		chain := xff("198.51.100.9, 203.0.113.7")
		for i := range 2 {
			if r := c.Do(t, badRefresh(chain)); r.Status != http.StatusUnauthorized {
				t.Fatalf("chain call %d: %d %s, want 401", i+1, r.Status, r.Body)
			}
		}
		expectRateLimited(t, "203.0.113.7 after two chained calls", c.Do(t, badRefresh(xff("203.0.113.7"))), 2)
		expectRateLimited(t, "chain with another forged left hop", c.Do(t, badRefresh(xff("192.0.2.55, 203.0.113.7"))), 2)
		if r := c.Do(t, badRefresh(xff("198.51.100.9"))); r.Status != http.StatusUnauthorized {
			t.Fatalf("198.51.100.9 was charged for the chain: %d %s", r.Status, r.Body)
		}
		// Trusted hops on the right are skipped: the client is the last untrusted one.
		if r := c.Do(t, badRefresh(xff("203.0.113.9, 127.0.0.1"))); r.Status != http.StatusUnauthorized {
			t.Fatalf("203.0.113.9 via two proxies, call 1: %d %s", r.Status, r.Body)
		}
		if r := c.Do(t, badRefresh(xff("203.0.113.9"))); r.Status != http.StatusUnauthorized {
			t.Fatalf("203.0.113.9 call 2: %d %s", r.Status, r.Body)
		}
		expectRateLimited(t, "203.0.113.9 call 3", c.Do(t, badRefresh(xff("203.0.113.9, 127.0.0.1"))), 2)
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		t.Parallel()
		sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true,
			Configure: func(c *config.Config) { c.RateLimitAuth = 2 }})
		c := testutil.NewClient(sys.URL)
		for i, ip := range []string{"203.0.113.1", "203.0.113.2"} {
			if r := c.Do(t, badRefresh(map[string]string{"X-Forwarded-For": ip})); r.Status != http.StatusUnauthorized {
				t.Fatalf("call %d: %d %s, want 401", i+1, r.Status, r.Body)
			}
		}
		expectRateLimited(t, "a third invented X-Forwarded-For", c.Do(t, badRefresh(map[string]string{"X-Forwarded-For": "203.0.113.3"})), 2)
		expectRateLimited(t, "no X-Forwarded-For", c.Do(t, badRefresh(nil)), 2)
	})
}

// TestCORSAllowlist: allowed origins get credentialed CORS, others get nothing, and their
// preflights are refused outright.
func TestCORSAllowlist(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 10, 1, -time.Second, time.Hour)
	path := "/v1/sales/" + sale.Sale.ID.String() + "/orders"

	ok := c.Do(t, testutil.Request{Method: "OPTIONS", Path: path, Header: map[string]string{
		"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "content-type,idempotency-key"}})
	if ok.Status != http.StatusNoContent {
		t.Fatalf("allowed preflight: %d %s", ok.Status, ok.Body)
	}
	h := ok.Header
	if h.Get("Access-Control-Allow-Origin") != "http://localhost:5173" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Access-Control-Allow-Methods") != "POST" || !strings.EqualFold(strings.ReplaceAll(h.Get("Access-Control-Allow-Headers"), " ", ""), "content-type,idempotency-key") ||
		!strings.Contains(h.Get("Vary"), "Origin") ||
		h.Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("allowed preflight headers: %v", h)
	}

	evil := c.Do(t, testutil.Request{Method: "OPTIONS", Path: path, Header: map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}})
	expectProblem(t, "foreign preflight", evil, http.StatusForbidden, "origin-not-allowed")
	if v := evil.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("foreign preflight: Access-Control-Allow-Origin %q", v)
	}

	simple := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales", Header: map[string]string{"Origin": "https://evil.example"}})
	if simple.Status != http.StatusOK {
		t.Fatalf("GET from a foreign origin: %d %s", simple.Status, simple.Body)
	}
	if v := simple.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("GET from a foreign origin: Access-Control-Allow-Origin %q", v)
	}
	if v := simple.Header.Get("Access-Control-Allow-Credentials"); v != "" {
		t.Fatalf("GET from a foreign origin: Access-Control-Allow-Credentials %q", v)
	}
	friendly := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales", Header: map[string]string{"Origin": "http://localhost:5173"}})
	if friendly.Status != http.StatusOK || friendly.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		friendly.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("GET from an allowed origin: %d %v", friendly.Status, friendly.Header)
	}
}

// TestCSRFCookiePurchase: a cookie-authenticated purchase from a foreign origin is refused before
// it reserves anything; from an allowed origin, or from a non-browser client, it goes through.
func TestCSRFCookiePurchase(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 10, 5, -time.Second, time.Hour)
	token := sys.TokenFor(t, sys.CreateUsers(t, 1, "shopper")[0])
	path := "/v1/sales/" + sale.Sale.ID.String() + "/orders"
	buy := func(key string, extra map[string]string) testutil.Response {
		h := map[string]string{"Cookie": "fs_access=" + token, "Idempotency-Key": key}
		for k, v := range extra {
			h[k] = v
		}
		return c.Do(t, testutil.Request{Method: "POST", Path: path, Header: h, Body: quantityBody(1)})
	}
	remaining := func() float64 {
		return c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales/" + sale.Sale.ID.String() + "/inventory"}).JSON(t)["remaining"].(float64)
	}

	for _, hostile := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "https://shop.evil.example"},
	} {
		r := buy("csrf-key-0001", hostile)
		expectProblem(t, "cross-origin cookie purchase", r, http.StatusForbidden, "cross-origin-request-rejected")
		if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("refused purchase %v: Access-Control-Allow-Origin %q", hostile, v)
		}
	}
	if n := remaining(); n != 10 {
		t.Fatalf("inventory after refused cross-origin purchases: %v remaining, want 10", n)
	}

	// The refused key left no trace: the allowed origin's purchase with it is a first answer.
	allowed := buy("csrf-key-0001", map[string]string{"Origin": "http://localhost:5173", "Sec-Fetch-Site": "cross-site"})
	if allowed.Status != http.StatusAccepted || allowed.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("purchase from an allowed origin: %d %v %s", allowed.Status, allowed.Header, allowed.Body)
	}
	if v := allowed.Header.Get("Access-Control-Allow-Origin"); v != "http://localhost:5173" {
		t.Fatalf("purchase from an allowed origin: Access-Control-Allow-Origin %q", v)
	}
	if r := buy("csrf-key-0002", map[string]string{"Origin": "http://localhost:5173"}); r.Status != http.StatusAccepted {
		t.Fatalf("purchase from an allowed origin (no Sec-Fetch-Site): %d %s", r.Status, r.Body)
	}
	if r := buy("csrf-key-0003", nil); r.Status != http.StatusAccepted {
		t.Fatalf("purchase with no Origin (non-browser client): %d %s", r.Status, r.Body)
	}
	if r := buy("csrf-key-0004", map[string]string{"Sec-Fetch-Site": "same-origin"}); r.Status != http.StatusAccepted {
		t.Fatalf("same-origin purchase: %d %s", r.Status, r.Body)
	}
	if n := remaining(); n != 6 {
		t.Fatalf("inventory after 4 accepted purchases: %v remaining, want 6", n)
	}
}

// TestSecurityHeaders: every answer carries the API's security headers; HSTS only in production.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	for _, req := range []testutil.Request{
		{Method: "GET", Path: "/v1/sales"},
		{Method: "GET", Path: "/v1/me"},            // a problem answer
		{Method: "GET", Path: "/no/such/resource"}, // the router's 404
	} {
		r := c.Do(t, req)
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", req.Path, csp)
		}
		for name, want := range map[string]string{
			"X-Content-Type-Options":       "nosniff",
			"X-Frame-Options":              "DENY",
			"Referrer-Policy":              "no-referrer",
			"Cross-Origin-Opener-Policy":   "same-origin",
			"Cross-Origin-Resource-Policy": "same-origin",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s (%d): %s %q, want %q", req.Path, r.Status, name, got, want)
			}
		}
		if v := h.Get("Strict-Transport-Security"); v != "" {
			t.Errorf("%s: Strict-Transport-Security %q outside production", req.Path, v)
		}
	}
}

// TestOversizedHeadersAreAProblem: headers beyond 32 KiB are refused with a 431 problem, not the
// server's plain-text answer, and nothing runs.
func TestOversizedHeadersAreAProblem(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales", Header: map[string]string{"X-Padding": strings.Repeat("a", 40<<10)}})
	if r.Status != http.StatusRequestHeaderFieldsTooLarge || r.ProblemType() != "headers-too-large" {
		t.Fatalf("40 KiB of headers: %d %q %s", r.Status, r.ProblemType(), r.Body)
	}
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales", Header: map[string]string{"X-Padding": strings.Repeat("a", 16<<10)}}); r.Status != http.StatusOK {
		t.Fatalf("16 KiB of headers: %d %s", r.Status, r.Body)
	}
}

// TestAuthenticatedAnswersAreNotStored: an answer computed with the caller's credentials carries
// Cache-Control: no-store, whatever its status (a shared cache or the browser's must not keep
// one user's orders, tickets or figures); public answers to anonymous callers do not.
func TestAuthenticatedAnswersAreNotStored(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	_, admin := sys.Admin(t)
	shopper := sys.CreateUsers(t, 1, "shopper")[0]
	session := sys.SessionFor(t, shopper)
	sale := sys.CreateSale(t, 10, 2, -time.Minute, time.Hour)
	salePath := "/v1/sales/" + sale.Sale.ID.String()

	placed := c.Do(t, testutil.Request{Method: "POST", Path: salePath + "/orders", Token: session.AccessToken,
		Header: map[string]string{"Idempotency-Key": "no-store-0001"}, Body: map[string]any{"quantity": 1}})
	start := time.Now().Add(time.Hour).UTC()
	for _, tc := range []struct {
		name   string
		req    testutil.Request
		status int
	}{
		{"me", testutil.Request{Method: "GET", Path: "/v1/me", Token: session.AccessToken}, 200},
		{"me by cookie", testutil.Request{Method: "GET", Path: "/v1/me", Header: map[string]string{"Cookie": "fs_access=" + session.AccessToken}}, 200},
		{"orders", testutil.Request{Method: "GET", Path: "/v1/orders", Token: session.AccessToken}, 200},
		{"an order", testutil.Request{Method: "GET", Path: placed.Header.Get("Location"), Token: session.AccessToken}, 200},
		{"another purchase (202)", testutil.Request{Method: "POST", Path: salePath + "/orders", Token: session.AccessToken,
			Header: map[string]string{"Idempotency-Key": "no-store-0002"}, Body: map[string]any{"quantity": 1}}, 202},
		{"a WebSocket ticket", testutil.Request{Method: "POST", Path: "/v1/ws/tickets", Token: session.AccessToken}, 201},
		{"a sale as the shopper sees it", testutil.Request{Method: "GET", Path: salePath, Token: session.AccessToken}, 200},
		{"create a sale", testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: admin, Body: map[string]any{
			"name": "No store", "priceCents": 100, "currency": "EUR", "totalStock": 5, "perUserLimit": 1,
			"startsAt": start.Format(time.RFC3339), "endsAt": start.Add(time.Hour).Format(time.RFC3339)}}, 201},
		{"change a sale", testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + sale.Sale.ID.String(), Token: admin, Body: map[string]any{"totalStock": 20}}, 200},
		{"sale stats", testutil.Request{Method: "GET", Path: "/v1/admin/sales/" + sale.Sale.ID.String() + "/stats", Token: admin}, 200},
		{"dead letters", testutil.Request{Method: "GET", Path: "/v1/admin/dead-letters", Token: admin}, 200},
		{"an order not found", testutil.Request{Method: "GET", Path: "/v1/orders/" + sale.Sale.ID.String(), Token: session.AccessToken}, 404},
		{"login", testutil.Request{Method: "POST", Path: "/v1/auth/login", Body: map[string]any{"email": sys.Config.AdminEmail, "password": testutil.AdminPassword}}, 200},
		{"refresh", testutil.Request{Method: "POST", Path: "/v1/auth/refresh", Body: map[string]any{"refreshToken": session.RefreshToken}}, 200},
		{"logout", testutil.Request{Method: "POST", Path: "/v1/auth/logout", Token: sys.TokenFor(t, shopper)}, 204},
	} {
		r := c.Do(t, tc.req)
		if r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
		}
		if got := r.Header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", tc.name, r.Status, got)
		}
	}
	for _, path := range []string{"/v1/sales", salePath, salePath + "/inventory", "/healthz"} {
		if r := c.Do(t, testutil.Request{Method: "GET", Path: path}); r.Status != 200 || r.Header.Get("Cache-Control") == "no-store" {
			t.Errorf("anonymous GET %s: %d, Cache-Control %q", path, r.Status, r.Header.Get("Cache-Control"))
		}
	}
}

// TestJSONBodiesTakenInEverySpelling: the 415s for other media types, codings and charsets leave
// every spelling of a plain JSON body alone (media types and charsets are case-insensitive;
// identity is no coding at all).
func TestJSONBodiesTakenInEverySpelling(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	for i, h := range []map[string]string{
		{"Content-Type": "application/json"},
		{"Content-Type": "APPLICATION/JSON"},
		{"Content-Type": "application/json; charset=UTF-8"},
		{"Content-Type": "application/json;charset=\"utf-8\""},
		{"Content-Type": "application/json", "Content-Encoding": "identity"},
	} {
		r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/register", Header: h,
			Body: `{"email": "spelling-` + strconv.Itoa(i) + `@example.com", "password": "Tr0ub4dor&3-horse"}`})
		if r.Status != http.StatusCreated {
			t.Errorf("%v: %d %s", h, r.Status, r.Body)
		}
	}
}
