package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// maxBody is the body cap of the system under test, small so that 413 is cheap to provoke.
const maxBody = 1024

// hostile is one malformed or hostile request and the exact problem it must earn.
type hostile struct {
	name string
	req  testutil.Request
	// raw, when set, sends a hand-built request instead of req (headers or framing Client.Do
	// cannot produce).
	raw     func(base string) *http.Request
	status  int
	problem string
	check   func(t *testing.T, r testutil.Response)
}

// TestMalformedRequestsAreRefusedAndLeaveNoTrace sends a table of malformed and hostile requests
// through the real HTTP server. Each must be answered with the exact status and problem type as
// application/problem+json (and match the spec, which Client.Do checks); afterwards PostgreSQL,
// Redis and the order queue must be exactly as they were before the table.
func TestMalformedRequestsAreRefusedAndLeaveNoTrace(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Configure: func(c *config.Config) { c.MaxBodyBytes = maxBody }})
	c := testutil.NewClient(sys.URL)
	ctx := context.Background()

	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	session := sys.SessionFor(t, shopper)
	shopperToken := session.AccessToken
	sessionID, _, _ := strings.Cut(session.RefreshToken, ".")
	_, adminToken := sys.Admin(t)
	sale := sys.CreateSale(t, 10, 2, -time.Minute, time.Hour)
	saleID := sale.Sale.ID.String()
	ordersPath := "/v1/sales/" + saleID + "/orders"

	// Forged tokens. The control token is minted exactly like the forgeries, with nothing
	// wrong: it must be accepted, which proves each forgery is refused for its one flaw.
	mint := func(method gojwt.SigningMethod, key any, mutate func(*gojwt.MapClaims)) string {
		now := time.Now()
		claims := gojwt.MapClaims{
			"iss": sys.Config.JWTIssuer, "aud": []string{sys.Config.JWTAudience}, "sub": shopper.ID.String(),
			"tid": shopper.TenantID.String(), "sid": sessionID, "role": "shopper", "email": shopper.Email, "jti": uuid.NewString(),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		}
		if mutate != nil {
			mutate(&claims)
		}
		tok := gojwt.NewWithClaims(method, claims)
		tok.Header["kid"] = sys.Config.JWTKeyID
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	secret := []byte(sys.Config.JWTSecret)
	control := mint(gojwt.SigningMethodHS256, secret, nil)
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me", Token: control}); r.Status != http.StatusOK {
		t.Fatalf("control token minted like the forgeries is refused: %d %s", r.Status, r.Body)
	}
	otherSecret := mint(gojwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes-long!"), nil)
	expired := mint(gojwt.SigningMethodHS256, secret, func(m *gojwt.MapClaims) {
		(*m)["iat"], (*m)["nbf"], (*m)["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	})
	algNone := mint(gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, nil)
	hs512 := mint(gojwt.SigningMethodHS512, secret, nil)
	wrongAudience := mint(gojwt.SigningMethodHS256, secret, func(m *gojwt.MapClaims) { (*m)["aud"] = []string{"someone-else"} })
	adminClaimByShopper := mint(gojwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes-long!"),
		func(m *gojwt.MapClaims) { (*m)["role"] = "admin" })
	// alg none with an admin role and no signature at all: the classic forgery.
	if !strings.HasSuffix(algNone, ".") {
		t.Fatalf("alg none token should have an empty signature: %s", algNone)
	}

	// Snapshot of everything a request could write.
	counts := func() map[string]int {
		out := map[string]int{}
		for _, table := range []string{"tenants", "users", "sales", "orders"} {
			var n int
			if err := sys.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[table] = n
		}
		return out
	}
	redisKeys := func(pattern string) []string {
		keys := testutil.Keys(ctx, sys.Redis, pattern)
		slices.Sort(keys)
		return keys
	}
	invKey := sys.Config.RedisPrefix + ":{" + sale.Sale.TenantID.String() + ":" + saleID + "}:inv"
	inventory := func() map[string]string {
		m, err := sys.Redis.HGetAll(ctx, invKey).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	queuePattern := "asynq:{" + sys.Config.OrderQueue + "}:*"
	pgBefore, keysBefore, invBefore, queueBefore := counts(), redisKeys(sys.Config.RedisPrefix+":*"), inventory(), redisKeys(queuePattern)
	if !slices.Contains(keysBefore, invKey) || invBefore["remaining"] != "10" || pgBefore["sales"] != 1 || pgBefore["users"] != 2 {
		t.Fatalf("unexpected starting state (the snapshot would prove nothing): pg %v, keys %v, inventory %v", pgBefore, keysBefore, invBefore)
	}

	n := 0
	key := func() string { n++; return fmt.Sprintf("malformed-key-%04d", n) }
	buy := func(path string, body any) testutil.Request {
		return testutil.Request{Method: "POST", Path: path, Token: shopperToken,
			Header: map[string]string{"Idempotency-Key": key()}, Body: body}
	}
	withHeader := func(r testutil.Request, k, v string) testutil.Request {
		h := map[string]string{k: v}
		for hk, hv := range r.Header {
			if hk != k {
				h[hk] = hv
			}
		}
		r.Header = h
		return r
	}
	withoutHeader := func(r testutil.Request, k string) testutil.Request {
		h := map[string]string{}
		for hk, hv := range r.Header {
			if hk != k {
				h[hk] = hv
			}
		}
		r.Header = h
		return r
	}
	withToken := func(r testutil.Request, tok string) testutil.Request { r.Token = tok; return r }
	validSale := func() map[string]any {
		start := time.Now().Add(time.Hour).UTC()
		return map[string]any{"name": "Hostile", "priceCents": 100, "currency": "EUR", "totalStock": 5, "perUserLimit": 1,
			"startsAt": start.Format(time.RFC3339), "endsAt": start.Add(time.Hour).Format(time.RFC3339)}
	}
	saleWith := func(k string, v any) map[string]any { s := validSale(); s[k] = v; return s }
	wantAuthenticate := func(t *testing.T, r testutil.Response) {
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer WWW-Authenticate challenge: %q", r.Header.Get("WWW-Authenticate"))
		}
	}
	// A 405 must say what is allowed (RFC 9110, section 15.5.6).
	wantAllow := func(methods string) func(t *testing.T, r testutil.Response) {
		return func(t *testing.T, r testutil.Response) {
			if got := r.Header.Get("Allow"); got != methods {
				t.Errorf("Allow %q, want %q", got, methods)
			}
		}
	}
	padding := strings.Repeat("x", maxBody)

	cases := []hostile{
		// Body syntax and shape.
		{name: "bad JSON syntax", req: buy(ordersPath, `{"quantity": 1,,}`), status: 400, problem: "invalid-request"},
		{name: "truncated JSON", req: buy(ordersPath, `{"quantity": 1`), status: 400, problem: "invalid-request"},
		{name: "JSON array instead of object", req: buy(ordersPath, `[{"quantity": 1}]`), status: 400, problem: "invalid-request"},
		{name: "JSON null", req: buy(ordersPath, `null`), status: 400, problem: "invalid-request"},
		{name: "quantity as string", req: buy(ordersPath, `{"quantity": "1"}`), status: 400, problem: "invalid-request"},
		{name: "quantity as float 1.5", req: buy(ordersPath, `{"quantity": 1.5}`), status: 400, problem: "invalid-request"},
		{name: "quantity overflowing float", req: buy(ordersPath, `{"quantity": 1e400}`), status: 400, problem: "invalid-request"},
		{name: "negative quantity", req: buy(ordersPath, map[string]any{"quantity": -1}), status: 400, problem: "invalid-request"},
		{name: "zero quantity", req: buy(ordersPath, map[string]any{"quantity": 0}), status: 400, problem: "invalid-request"},
		{name: "quantity above maximum", req: buy(ordersPath, map[string]any{"quantity": 1001}), status: 400, problem: "invalid-request"},
		{name: "unknown field", req: buy(ordersPath, map[string]any{"quantity": 1, "priceCents": 0}), status: 400, problem: "invalid-request"},
		{name: "missing quantity", req: buy(ordersPath, map[string]any{}), status: 400, problem: "invalid-request"},
		{name: "missing body", req: buy(ordersPath, nil), status: 400, problem: "invalid-request"},
		{name: "empty body", req: buy(ordersPath, ""), status: 400, problem: "invalid-request"},
		{name: "body as text/plain", req: withHeader(buy(ordersPath, `{"quantity": 1}`), "Content-Type", "text/plain"), status: 415, problem: "unsupported-media-type"},
		{name: "body as form", req: withHeader(buy(ordersPath, `quantity=1`), "Content-Type", "application/x-www-form-urlencoded"), status: 415, problem: "unsupported-media-type"},
		{name: "oversized body", req: buy(ordersPath, map[string]any{"quantity": 1, "pad": padding}), status: 413, problem: "payload-too-large"},
		{name: "oversized chunked body (no Content-Length)", raw: chunked(ordersPath, shopperToken, key, padding), status: 413, problem: "payload-too-large"},
		{name: "oversized chunked body without a token", raw: chunked(ordersPath, "", key, padding), status: 413, problem: "payload-too-large"},
		{name: "oversized chunked body on a public route", raw: chunked("/v1/auth/register", "", nil, padding), status: 413, problem: "payload-too-large"},

		// Path: sale ids.
		{name: "unknown sale", req: buy("/v1/sales/"+uuid.Must(uuid.NewV7()).String()+"/orders", map[string]any{"quantity": 1}), status: 404, problem: "sale-not-found"},
		{name: "non-uuid sale id", req: buy("/v1/sales/not-a-uuid/orders", map[string]any{"quantity": 1}), status: 400, problem: "invalid-request"},
		{name: "sale id with SQL", req: buy("/v1/sales/1%27%20OR%20%271%27=%271/orders", map[string]any{"quantity": 1}), status: 400, problem: "invalid-request"},
		{name: "sale id with NUL byte", req: buy("/v1/sales/"+saleID[:8]+"%00"+saleID[9:]+"/orders", map[string]any{"quantity": 1}), status: 400, problem: "invalid-request"},
		{name: "path traversal with encoded slashes", req: buy("/v1/sales/..%2F..%2Fetc/orders", map[string]any{"quantity": 1}), status: 400, problem: "invalid-request"},
		{name: "path traversal with encoded dot segments", req: buy("/v1/sales/%2e%2e/%2e%2e/v1/admin/sales", validSale()), status: 404, problem: "not-found"},
		{name: "path traversal with dot segments", req: buy("/v1/sales/../admin/sales", validSale()), status: 404, problem: "not-found"},
		{name: "unknown sale, read", req: testutil.Request{Method: "GET", Path: "/v1/sales/" + uuid.Must(uuid.NewV7()).String()}, status: 404, problem: "sale-not-found"},

		// Idempotency-Key.
		{name: "missing Idempotency-Key", req: withoutHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Idempotency-Key"), status: 400, problem: "invalid-request"},
		{name: "too short Idempotency-Key", req: withHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Idempotency-Key", "short"), status: 400, problem: "invalid-request"},
		{name: "too long Idempotency-Key", req: withHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Idempotency-Key", strings.Repeat("k", 129)), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key with spaces", req: withHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Idempotency-Key", "key with spaces"), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key with Redis glob and separator", req: withHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Idempotency-Key", "abc*def}{x"), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key non-ASCII", req: withHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Idempotency-Key", "ключ-ключ-ключ"), status: 400, problem: "invalid-request"},

		// Authentication.
		{name: "missing token", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), ""), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "garbage token", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), "not.a.jwt"), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "Basic instead of Bearer", req: withToken(withHeader(buy(ordersPath, map[string]any{"quantity": 1}), "Authorization", "Basic YWRtaW46YWRtaW4="), ""), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token signed with another secret", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), otherSecret), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "expired token", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), expired), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "alg none token", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), algNone), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "HS512 token with the right secret", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), hs512), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token for another audience", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), wrongAudience), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "self-made admin token on admin route", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminClaimByShopper, Body: validSale()}, status: 401, problem: "unauthenticated", check: wantAuthenticate},

		// Authorisation.
		{name: "admin route as shopper", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: shopperToken, Body: validSale()}, status: 403, problem: "forbidden"},
		{name: "admin PATCH as shopper", req: testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID, Token: shopperToken, Body: map[string]any{"totalStock": 1}}, status: 403, problem: "forbidden"},
		{name: "shopper buying as admin", req: withToken(buy(ordersPath, map[string]any{"quantity": 1}), adminToken), status: 403, problem: "forbidden"},

		// Auth bodies and tenants.
		{name: "register with invalid email", req: testutil.Request{Method: "POST", Path: "/v1/auth/register", Body: map[string]any{"email": "not-an-email", "password": "long-enough-password"}}, status: 400, problem: "invalid-request"},
		{name: "register with short password", req: testutil.Request{Method: "POST", Path: "/v1/auth/register", Body: map[string]any{"email": "short@example.com", "password": "short"}}, status: 400, problem: "invalid-request"},
		{name: "register with role escalation field", req: testutil.Request{Method: "POST", Path: "/v1/auth/register", Body: map[string]any{"email": "mallory@example.com", "password": "long-enough-password", "role": "admin"}}, status: 400, problem: "invalid-request"},
		{name: "register in unknown tenant", req: testutil.Request{Method: "POST", Path: "/v1/auth/register", Header: map[string]string{"X-Tenant": "no-such-tenant"},
			Body: map[string]any{"email": "nobody@example.com", "password": "long-enough-password"}}, status: 404, problem: "tenant-not-found"},
		{name: "register with malformed tenant slug", req: testutil.Request{Method: "POST", Path: "/v1/auth/register", Header: map[string]string{"X-Tenant": "../Default"},
			Body: map[string]any{"email": "nobody@example.com", "password": "long-enough-password"}}, status: 400, problem: "invalid-request"},
		{name: "login with no fields", req: testutil.Request{Method: "POST", Path: "/v1/auth/login", Body: map[string]any{}}, status: 400, problem: "invalid-request"},
		{name: "login without password", req: testutil.Request{Method: "POST", Path: "/v1/auth/login", Body: map[string]any{"email": sys.Config.AdminEmail}}, status: 400, problem: "invalid-request"},

		// Sale administration.
		{name: "create sale ending before it starts", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken,
			Body: saleWith("endsAt", time.Now().UTC().Format(time.RFC3339))}, status: 422, problem: "invalid-sale-window"},
		{name: "create sale with negative stock", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken, Body: saleWith("totalStock", -5)}, status: 400, problem: "invalid-request"},
		{name: "create sale with lowercase currency", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken, Body: saleWith("currency", "eur")}, status: 400, problem: "invalid-request"},
		{name: "create sale with non-date startsAt", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken, Body: saleWith("startsAt", "tomorrow")}, status: 400, problem: "invalid-request"},
		{name: "PATCH sale with empty object", req: testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID, Token: adminToken, Body: map[string]any{}}, status: 400, problem: "invalid-request"},
		{name: "PATCH sale with zero stock", req: testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID, Token: adminToken, Body: map[string]any{"totalStock": 0}}, status: 400, problem: "invalid-request"},
		{name: "PATCH unknown sale", req: testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + uuid.Must(uuid.NewV7()).String(), Token: adminToken, Body: map[string]any{"totalStock": 3}}, status: 404, problem: "sale-not-found"},

		// Routing.
		{name: "unknown route", req: testutil.Request{Method: "GET", Path: "/v1/nope"}, status: 404, problem: "not-found"},
		{name: "unknown route with admin token", req: testutil.Request{Method: "POST", Path: "/v1/admin/users", Token: adminToken, Body: map[string]any{"role": "admin"}}, status: 404, problem: "not-found"},
		{name: "wrong method on sale", req: testutil.Request{Method: "DELETE", Path: "/v1/sales/" + saleID, Token: adminToken}, status: 405, problem: "method-not-allowed", check: wantAllow("GET")},
		{name: "wrong method on orders", req: testutil.Request{Method: "PUT", Path: ordersPath, Token: shopperToken, Body: map[string]any{"quantity": 1}}, status: 405, problem: "method-not-allowed", check: wantAllow("POST")},
		{name: "wrong method on admin sale", req: testutil.Request{Method: "GET", Path: "/v1/admin/sales/" + saleID, Token: adminToken}, status: 405, problem: "method-not-allowed", check: wantAllow("PATCH")},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r testutil.Response
			if tc.raw != nil {
				r = doRaw(t, c, tc.raw(sys.URL))
			} else {
				r = c.Do(t, tc.req)
			}
			if r.Status != tc.status || r.ProblemType() != tc.problem {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.ProblemType(), tc.status, tc.problem, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			if p := r.JSON(t); p["status"] != float64(tc.status) || p["title"] == nil || p["title"] == "" ||
				!strings.HasPrefix(fmt.Sprint(p["type"]), "https://flashsale.dev/problems/") {
				t.Errorf("problem document does not agree with the answer: %v", p)
			}
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("a refused request claims to be a replay")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	// Nothing was written anywhere.
	if got := counts(); !maps.Equal(got, pgBefore) {
		t.Errorf("PostgreSQL rows changed: before %v, after %v", pgBefore, got)
	}
	if got := redisKeys(sys.Config.RedisPrefix + ":*"); !slices.Equal(got, keysBefore) {
		t.Errorf("Redis keys changed:\nbefore %v\nafter  %v", keysBefore, got)
	}
	if got := inventory(); !maps.Equal(got, invBefore) {
		t.Errorf("inventory changed: before %v, after %v", invBefore, got)
	}
	if got := redisKeys(queuePattern); !slices.Equal(got, queueBefore) {
		t.Errorf("order queue keys changed:\nbefore %v\nafter  %v", queueBefore, got)
	}
	if info := queueInfo(t, sys); info != nil && (info.Size != 0 || info.ProcessedTotal != 0) {
		t.Errorf("order queue saw tasks: %+v", info)
	}
}

// queueInfo is the state of the system's order queue, nil if no task was ever enqueued on it.
func queueInfo(t *testing.T, sys *testutil.System) *asynq.QueueInfo {
	t.Helper()
	in := asynq.NewInspectorFromRedisClient(sys.Redis)
	queues, err := in.Queues()
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	if !slices.Contains(queues, sys.Config.OrderQueue) {
		return nil
	}
	info, err := in.GetQueueInfo(sys.Config.OrderQueue)
	if err != nil {
		t.Fatalf("inspect the order queue: %v", err)
	}
	return info
}

// chunked builds a request whose body is over the cap and of unknown length, so the client
// streams it chunked and the server learns the size only while reading.
func chunked(path, token string, key func() string, padding string) func(base string) *http.Request {
	return func(base string) *http.Request {
		body := io.MultiReader(strings.NewReader(`{"quantity": 1, "pad": "`), strings.NewReader(padding), strings.NewReader(`"}`))
		hr, err := http.NewRequest("POST", base+path, body)
		if err != nil {
			panic(err)
		}
		hr.Header.Set("Content-Type", "application/json")
		if token != "" {
			hr.Header.Set("Authorization", "Bearer "+token)
		}
		if key != nil {
			hr.Header.Set("Idempotency-Key", key())
		}
		return hr
	}
}

// doRaw sends a hand-built request and checks the answer against the contract like Client.Do.
func doRaw(t *testing.T, c *testutil.Client, hr *http.Request) testutil.Response {
	t.Helper()
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", hr.Method, hr.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := testutil.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if err := testutil.CheckContract(hr, out); err != nil {
		t.Errorf("%s %s -> %d breaks the contract: %v\nbody: %s", hr.Method, hr.URL, out.Status, err, raw)
	}
	return out
}
