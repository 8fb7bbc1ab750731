package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
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

	// Tampered copies of the shopper's genuine token. flip changes one base64url character of a
	// segment; the bits it flips decide whether the decoded bytes change.
	const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flip := func(tok string, seg, pos, bits int) string {
		parts := strings.Split(tok, ".")
		b := []byte(parts[seg])
		if pos < 0 {
			pos += len(b)
		}
		b[pos] = b64url[strings.IndexByte(b64url, b[pos])^bits]
		parts[seg] = string(b)
		return strings.Join(parts, ".")
	}
	tokParts := strings.Split(shopperToken, ".")
	sigFlipped := flip(shopperToken, 2, len(tokParts[2])/2, 1)
	payloadFlipped := flip(shopperToken, 1, len(tokParts[1])/2, 1)
	headerFlipped := flip(shopperToken, 0, len(tokParts[0])/2, 1)
	// The last of the 43 characters of an HS256 signature carries 4 bits of it and 2 bits of
	// nothing: only strict decoding refuses a token whose unused bits were changed.
	sigUnusedBits := flip(shopperToken, 2, -1, 1)
	sigStripped := tokParts[0] + "." + tokParts[1] + "."
	promotedPayload := func() string {
		raw, err := base64.RawURLEncoding.DecodeString(tokParts[1])
		if err != nil || !strings.Contains(string(raw), `"role":"shopper"`) {
			t.Fatalf("unexpected token payload %s: %v", raw, err)
		}
		return tokParts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `"role":"shopper"`, `"role":"admin"`, 1))) + "." + tokParts[2]
	}()
	adminSignature := tokParts[0] + "." + tokParts[1] + "." + strings.Split(adminToken, ".")[2]

	// Cookie authentication works (so the cookie cases below are refused for their one flaw), and
	// so does a CORS preflight from an allowed origin (so the foreign ones are refused for theirs).
	cookie := func(tok string) string { return "fs_access=" + tok }
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me", Header: map[string]string{"Cookie": cookie(shopperToken)}}); r.Status != http.StatusOK {
		t.Fatalf("cookie authentication does not work: %d %s", r.Status, r.Body)
	}
	if len(sys.Config.CORSAllowedOrigins) == 0 {
		t.Fatal("no allowed origins configured")
	}
	allowedOrigin := sys.Config.CORSAllowedOrigins[len(sys.Config.CORSAllowedOrigins)-1]
	if r := c.Do(t, testutil.Request{Method: "OPTIONS", Path: ordersPath, Header: map[string]string{"Origin": allowedOrigin,
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,idempotency-key"}}); r.Status >= 300 ||
		r.Header.Get("Access-Control-Allow-Origin") != allowedOrigin {
		t.Fatalf("preflight from the allowed origin %s: %d, Access-Control-Allow-Origin %q", allowedOrigin, r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}

	// A second session of the shopper, logged out before the snapshot: its tokens must be dead.
	revoked := sys.SessionFor(t, shopper)
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me", Token: revoked.AccessToken}); r.Status != http.StatusOK {
		t.Fatalf("a fresh session's token is refused: %d %s", r.Status, r.Body)
	}
	if r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/logout", Token: revoked.AccessToken}); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	unknownRefresh := uuid.Must(uuid.NewV7()).String() + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))

	// Another shopper's order, durable and out of the queue before the snapshot, so nothing moves
	// after it.
	other := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	otherToken := sys.TokenFor(t, other)
	placed := c.Do(t, testutil.Request{Method: "POST", Path: ordersPath, Token: otherToken,
		Header: map[string]string{"Idempotency-Key": "other-shopper-order-0001"}, Body: map[string]any{"quantity": 1}})
	if placed.Status != http.StatusAccepted {
		t.Fatalf("the other shopper's purchase: %d %s", placed.Status, placed.Body)
	}
	var otherOrder struct{ ID string }
	placed.Decode(t, &otherOrder)
	otherOrderPath := "/v1/orders/" + otherOrder.ID
	testutil.WaitFor(t, 20*time.Second, "the other shopper's order to be confirmed and the queue idle", func() bool {
		r := c.Do(t, testutil.Request{Method: "GET", Path: otherOrderPath, Token: otherToken})
		var o struct{ Status string }
		if r.Status == http.StatusOK {
			r.Decode(t, &o)
		}
		info := queueInfo(t, sys)
		return o.Status == "confirmed" && info != nil && info.Size == 0 && info.ProcessedTotal == 1
	})

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
	queueInfoBefore := queueInfo(t, sys)
	if !slices.Contains(keysBefore, invKey) || invBefore["remaining"] != "9" || pgBefore["sales"] != 1 || pgBefore["users"] != 3 || pgBefore["orders"] != 1 {
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
	wantHeader := func(name, value string) func(t *testing.T, r testutil.Response) {
		return func(t *testing.T, r testutil.Response) {
			if got := r.Header.Get(name); got != value {
				t.Errorf("%s %q, want %q", name, got, value)
			}
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
	one := func() map[string]any { return map[string]any{"quantity": 1} }
	// cookieBuy is a valid purchase authenticated by the access cookie, as a browser sends it, with
	// the extra headers given: were it let through, it would buy.
	cookieBuy := func(tok string, h ...string) testutil.Request {
		r := withToken(withHeader(buy(ordersPath, one()), "Cookie", cookie(tok)), "")
		for i := 0; i+1 < len(h); i += 2 {
			r = withHeader(r, h[i], h[i+1])
		}
		return r
	}
	secured := func(method, path, tok string, h ...string) testutil.Request {
		r := testutil.Request{Method: method, Path: path, Token: tok, Header: map[string]string{}}
		for i := 0; i+1 < len(h); i += 2 {
			r.Header[h[i]] = h[i+1]
		}
		return r
	}
	refresh := func(body any, h ...string) testutil.Request {
		r := secured("POST", "/v1/auth/refresh", "", h...)
		r.Body = body
		return r
	}
	register := func(email, password string, h ...string) testutil.Request {
		r := secured("POST", "/v1/auth/register", "", h...)
		r.Body = map[string]any{"email": email, "password": password}
		return r
	}
	preflight := func(path, origin string) testutil.Request {
		return secured("OPTIONS", path, "", "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type,idempotency-key")
	}
	const evil = "https://evil.example"
	// A refused cross-origin request must not be readable by the foreign page either.
	noCORSGrant := func(t *testing.T, r testutil.Response) {
		if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("a foreign origin is granted Access-Control-Allow-Origin %q", v)
		}
		if v := r.Header.Get("Access-Control-Allow-Credentials"); v != "" {
			t.Errorf("a foreign origin is granted Access-Control-Allow-Credentials %q", v)
		}
	}
	// A refused refresh ends the browser's session: both cookies are cleared.
	clearsCookies := func(t *testing.T, r testutil.Response) {
		cleared := map[string]bool{}
		for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
			if ck.Value == "" && ck.MaxAge < 0 {
				cleared[ck.Name] = true
			}
		}
		if !cleared["fs_access"] || !cleared["fs_refresh"] {
			t.Errorf("a refused refresh does not clear both cookies: %q", r.Header.Values("Set-Cookie"))
		}
	}
	strong := "Tr0ub4dor&3-horse"

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
		{name: "body as another JSON media type", req: withHeader(buy(ordersPath, `{"quantity": 1}`), "Content-Type", "application/vnd.api+json"), status: 415, problem: "unsupported-media-type"},
		{name: "body as JSON in UTF-16", req: withHeader(buy(ordersPath, `{"quantity": 1}`), "Content-Type", "application/json; charset=utf-16"), status: 415, problem: "unsupported-media-type"},
		{name: "gzip-encoded body", req: withHeader(buy(ordersPath, gzipped(t, `{"quantity": 1}`)), "Content-Encoding", "gzip"), status: 415, problem: "unsupported-media-type",
			check: wantHeader("Accept-Encoding", "identity")},
		{name: "deflate-encoded register body", req: withHeader(register("deflate@example.com", strong), "Content-Encoding", "deflate"), status: 415, problem: "unsupported-media-type",
			check: wantHeader("Accept-Encoding", "identity")},
		{name: "PATCH sale as a JSON merge patch", req: withHeader(testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID, Token: adminToken,
			Body: map[string]any{"totalStock": 1}}, "Content-Type", "application/merge-patch+json"), status: 415, problem: "unsupported-media-type",
			check: wantHeader("Accept-Patch", "application/json")},
		{name: "PATCH sale as a JSON patch", req: withHeader(testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID, Token: adminToken,
			Body: `[{"op": "replace", "path": "/totalStock", "value": 1}]`}, "Content-Type", "application/json-patch+json"), status: 415, problem: "unsupported-media-type",
			check: wantHeader("Accept-Patch", "application/json")},
		{name: "create sale as a JSON merge patch", req: withHeader(testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken, Body: validSale()},
			"Content-Type", "application/merge-patch+json"), status: 415, problem: "unsupported-media-type"},
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
		{name: "wrong method on sale", req: testutil.Request{Method: "DELETE", Path: "/v1/sales/" + saleID, Token: adminToken}, status: 405, problem: "method-not-allowed", check: wantAllow("GET, HEAD")},
		{name: "wrong method on orders", req: testutil.Request{Method: "PUT", Path: ordersPath, Token: shopperToken, Body: map[string]any{"quantity": 1}}, status: 405, problem: "method-not-allowed", check: wantAllow("POST")},
		{name: "wrong method on admin sale", req: testutil.Request{Method: "GET", Path: "/v1/admin/sales/" + saleID, Token: adminToken}, status: 405, problem: "method-not-allowed", check: wantAllow("PATCH")},

		// Bodies that are more than one JSON value: the first one must not be taken for the body.
		{name: "two JSON objects", req: buy(ordersPath, `{"quantity": 1} {"quantity": 1}`), status: 400, problem: "invalid-request"},
		{name: "JSON object and trailing garbage", req: buy(ordersPath, `{"quantity": 1}]`), status: 400, problem: "invalid-request"},
		{name: "register body and trailing garbage", req: testutil.Request{Method: "POST", Path: "/v1/auth/register",
			Body: `{"email": "trailing@example.com", "password": "` + strong + `"} x`}, status: 400, problem: "invalid-request"},

		// Tampered copies of a genuine token.
		{name: "token with one signature character flipped", req: withToken(buy(ordersPath, one()), sigFlipped), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token with one payload character flipped", req: withToken(buy(ordersPath, one()), payloadFlipped), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token with one header character flipped", req: withToken(buy(ordersPath, one()), headerFlipped), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token with the unused bits of its signature changed", req: withToken(buy(ordersPath, one()), sigUnusedBits), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token with its signature stripped", req: withToken(buy(ordersPath, one()), sigStripped), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "token promoted to admin, signature kept", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: promotedPayload, Body: validSale()}, status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "shopper claims with the admin token's signature", req: testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminSignature, Body: validSale()}, status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "two tokens in one Authorization header", req: withToken(withHeader(buy(ordersPath, one()), "Authorization", "Bearer "+shopperToken+", Bearer "+adminToken), ""), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "tampered token in the cookie", req: cookieBuy(sigFlipped), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "alg none token in the cookie", req: cookieBuy(algNone), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "garbage bearer next to a valid cookie (no fallback)", req: withToken(cookieBuy(shopperToken), "not.a.jwt"), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "empty access cookie", req: cookieBuy(""), status: 401, problem: "unauthenticated", check: wantAuthenticate},

		// A revoked session: its access token is dead everywhere, and so is its refresh token.
		{name: "revoked session's token, purchase", req: withToken(buy(ordersPath, one()), revoked.AccessToken), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "revoked session's token, read", req: secured("GET", "/v1/me", revoked.AccessToken), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "revoked session's token as cookie", req: cookieBuy(revoked.AccessToken), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "revoked session's token, logout again", req: secured("POST", "/v1/auth/logout", revoked.AccessToken), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "revoked session's token, logout-all", req: secured("POST", "/v1/auth/logout-all", revoked.AccessToken), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "revoked session's refresh token", req: refresh(map[string]any{"refreshToken": revoked.RefreshToken}), status: 401, problem: "invalid-refresh-token", check: clearsCookies},
		{name: "revoked session's refresh cookie", req: refresh(nil, "Cookie", "fs_refresh="+revoked.RefreshToken), status: 401, problem: "invalid-refresh-token", check: clearsCookies},

		// Refresh. The schema takes 20 to 200 characters of [A-Za-z0-9_.-]: anything else is 400.
		// A token that fits it but names no live session is 401 invalid-refresh-token, whatever is
		// wrong with it (the client learns nothing), and rotates nothing.
		{name: "refresh with a garbage token", req: refresh(map[string]any{"refreshToken": "garbage-garbage-garbage"}), status: 401, problem: "invalid-refresh-token", check: clearsCookies},
		{name: "refresh with an unknown session", req: refresh(map[string]any{"refreshToken": unknownRefresh}), status: 401, problem: "invalid-refresh-token", check: clearsCookies},
		{name: "refresh with a session id that is no uuid", req: refresh(map[string]any{"refreshToken": "not-a-session-id.c2VjcmV0LXNlY3JldA"}), status: 401, problem: "invalid-refresh-token"},
		{name: "refresh with an empty secret", req: refresh(map[string]any{"refreshToken": sessionID + "."}), status: 401, problem: "invalid-refresh-token"},
		{name: "refresh with no session id", req: refresh(map[string]any{"refreshToken": ".c2VjcmV0LXNlY3JldC1zZWNyZXQ"}), status: 401, problem: "invalid-refresh-token"},
		{name: "refresh with nothing (no body, no cookie)", req: refresh(nil), status: 401, problem: "invalid-refresh-token", check: clearsCookies},
		{name: "refresh with an empty object and no cookie", req: refresh(map[string]any{}), status: 401, problem: "invalid-refresh-token"},
		{name: "refresh with a garbage cookie", req: refresh(nil, "Cookie", "fs_refresh=garbage"), status: 401, problem: "invalid-refresh-token", check: clearsCookies},
		{name: "refresh with the access token", req: refresh(map[string]any{"refreshToken": shopperToken}), status: 400, problem: "invalid-request"},
		{name: "refresh with a too short token", req: refresh(map[string]any{"refreshToken": "abc.def"}), status: 400, problem: "invalid-request"},
		{name: "refresh with a too long token", req: refresh(map[string]any{"refreshToken": sessionID + "." + strings.Repeat("A", 200)}), status: 400, problem: "invalid-request"},
		{name: "refresh with markup in the token", req: refresh(map[string]any{"refreshToken": "<script>alert(1)</script>.xxxxxxxx"}), status: 400, problem: "invalid-request"},
		{name: "refresh with encoded CRLF in the token", req: refresh(map[string]any{"refreshToken": sessionID + ".abc%0D%0ASet-Cookie:x"}), status: 400, problem: "invalid-request"},
		{name: "refresh with a number", req: refresh(map[string]any{"refreshToken": 1234567890}), status: 400, problem: "invalid-request"},
		{name: "refresh with null", req: refresh(map[string]any{"refreshToken": nil}), status: 400, problem: "invalid-request"},
		{name: "refresh with an array body", req: refresh([]string{unknownRefresh}), status: 400, problem: "invalid-request"},
		{name: "refresh with an unknown field", req: refresh(map[string]any{"refreshToken": unknownRefresh, "userId": shopper.ID.String()}), status: 400, problem: "invalid-request"},
		{name: "refresh with only an unknown field", req: refresh(map[string]any{"token": unknownRefresh}), status: 400, problem: "invalid-request"},
		{name: "refresh as text/plain", req: withHeader(refresh(`{"refreshToken": "`+unknownRefresh+`"}`), "Content-Type", "text/plain"), status: 415, problem: "unsupported-media-type"},

		// Logout.
		{name: "logout without token", req: secured("POST", "/v1/auth/logout", ""), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "logout-all without token", req: secured("POST", "/v1/auth/logout-all", ""), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "logout with a garbage token", req: secured("POST", "/v1/auth/logout", "not.a.jwt"), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "logout with a tampered token", req: secured("POST", "/v1/auth/logout", sigFlipped), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "logout with a garbage cookie", req: secured("POST", "/v1/auth/logout", "", "Cookie", "fs_access=garbage"), status: 401, problem: "unauthenticated", check: wantAuthenticate},
		{name: "logout with GET", req: secured("GET", "/v1/auth/logout", shopperToken), status: 405, problem: "method-not-allowed", check: wantAllow("POST")},

		// CSRF: a state-changing request from a page of a foreign origin, carrying the victim's
		// valid cookie. Each would act if let through.
		{name: "cookie purchase from a foreign Origin", req: cookieBuy(shopperToken, "Origin", evil), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie purchase with Sec-Fetch-Site cross-site", req: cookieBuy(shopperToken, "Sec-Fetch-Site", "cross-site"), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie purchase with Sec-Fetch-Site same-site", req: cookieBuy(shopperToken, "Sec-Fetch-Site", "same-site"), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie purchase with both cross-site signals", req: cookieBuy(shopperToken, "Origin", evil, "Sec-Fetch-Site", "cross-site"), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie purchase from Origin null", req: cookieBuy(shopperToken, "Origin", "null"), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie purchase from a look-alike origin", req: cookieBuy(shopperToken, "Origin", allowedOrigin+".evil.example"), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "bearer purchase from a foreign Origin", req: withHeader(buy(ordersPath, one()), "Origin", evil), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie logout from a foreign Origin", req: secured("POST", "/v1/auth/logout", "", "Cookie", cookie(shopperToken), "Origin", evil), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie logout-all with Sec-Fetch-Site cross-site", req: secured("POST", "/v1/auth/logout-all", "", "Cookie", cookie(shopperToken), "Sec-Fetch-Site", "cross-site"), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "cookie refresh from a foreign Origin", req: refresh(nil, "Cookie", "fs_refresh="+session.RefreshToken, "Origin", evil), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "admin cookie creating a sale from a foreign Origin", req: func() testutil.Request {
			r := secured("POST", "/v1/admin/sales", "", "Cookie", cookie(adminToken), "Origin", evil)
			r.Body = validSale()
			return r
		}(), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "admin cookie changing a sale with Sec-Fetch-Site cross-site", req: func() testutil.Request {
			r := secured("PATCH", "/v1/admin/sales/"+saleID, "", "Cookie", cookie(adminToken), "Sec-Fetch-Site", "cross-site")
			r.Body = map[string]any{"totalStock": 1}
			return r
		}(), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		{name: "register from a foreign Origin", req: register("csrf-victim@example.com", strong, "Origin", evil), status: 403, problem: "cross-origin-request-rejected", check: noCORSGrant},
		// From an allowed origin the request passes the origin check and meets the validator.
		{name: "cookie purchase from an allowed origin, zero quantity", req: func() testutil.Request {
			r := cookieBuy(shopperToken, "Origin", allowedOrigin, "Sec-Fetch-Site", "same-site")
			r.Body = map[string]any{"quantity": 0}
			return r
		}(), status: 400, problem: "invalid-request"},

		// CORS preflights from origins not on the allowlist.
		{name: "preflight from a foreign origin", req: preflight(ordersPath, evil), status: 403, problem: "origin-not-allowed", check: noCORSGrant},
		{name: "preflight from Origin null", req: preflight(ordersPath, "null"), status: 403, problem: "origin-not-allowed", check: noCORSGrant},
		{name: "preflight from a look-alike origin", req: preflight(ordersPath, allowedOrigin+".evil.example"), status: 403, problem: "origin-not-allowed", check: noCORSGrant},
		{name: "preflight from an allowed host on another scheme", req: preflight(ordersPath, strings.Replace(allowedOrigin, "http://", "https://", 1)), status: 403, problem: "origin-not-allowed", check: noCORSGrant},
		{name: "preflight for logout from a foreign origin", req: preflight("/v1/auth/logout", evil), status: 403, problem: "origin-not-allowed", check: noCORSGrant},

		// Header injection: the headers the server reads are matched whole against their patterns.
		{name: "Idempotency-Key with encoded CRLF", req: withHeader(buy(ordersPath, one()), "Idempotency-Key", "abcdefgh%0D%0ASet-Cookie:%20fs_access=x"), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key with a semicolon", req: withHeader(buy(ordersPath, one()), "Idempotency-Key", "abcdefgh;ijklmnop"), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key with quotes", req: withHeader(buy(ordersPath, one()), "Idempotency-Key", `abcdefgh"ijkl'mnop`), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key with a comma (two keys)", req: withHeader(buy(ordersPath, one()), "Idempotency-Key", "abcdefghijkl, mnopqrstuvwx"), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key with an encoded NUL", req: withHeader(buy(ordersPath, one()), "Idempotency-Key", "abcdefgh%00ijkl"), status: 400, problem: "invalid-request"},
		{name: "Idempotency-Key of 8 KiB", req: withHeader(buy(ordersPath, one()), "Idempotency-Key", strings.Repeat("k", 8<<10)), status: 400, problem: "invalid-request"},
		{name: "X-Tenant with encoded CRLF", req: register("crlf@example.com", strong, "X-Tenant", "default%0D%0AX-Role:%20admin"), status: 400, problem: "invalid-request"},
		{name: "X-Tenant with a semicolon", req: register("semicolon@example.com", strong, "X-Tenant", "default;admin"), status: 400, problem: "invalid-request"},
		{name: "X-Tenant with quotes", req: register("quotes@example.com", strong, "X-Tenant", `"default"`), status: 400, problem: "invalid-request"},
		{name: "X-Tenant with a comma (two tenants)", req: register("comma@example.com", strong, "X-Tenant", "default, other"), status: 400, problem: "invalid-request"},
		{name: "X-Tenant of 8 KiB", req: register("long@example.com", strong, "X-Tenant", strings.Repeat("a", 8<<10)), status: 400, problem: "invalid-request"},
		{name: "X-Tenant with SQL on a read", req: secured("GET", "/v1/sales", "", "X-Tenant", "default' OR '1'='1"), status: 400, problem: "invalid-request"},
		{name: "X-Tenant in capitals on login", req: func() testutil.Request {
			r := secured("POST", "/v1/auth/login", "", "X-Tenant", "DEFAULT")
			r.Body = map[string]any{"email": sys.Config.AdminEmail, "password": testutil.AdminPassword}
			return r
		}(), status: 400, problem: "invalid-request"},

		// Order ids: traversal, injection and somebody else's order.
		{name: "order id with encoded traversal", req: secured("GET", "/v1/orders/..%2F..%2Fetc%2Fpasswd", shopperToken), status: 400, problem: "invalid-request"},
		{name: "order id of encoded dots", req: secured("GET", "/v1/orders/%2e%2e", shopperToken), status: 400, problem: "invalid-request"},
		{name: "order id of encoded dot segments into admin", req: secured("GET", "/v1/orders/%2e%2e/admin/dead-letters", shopperToken), status: 404, problem: "not-found"},
		{name: "order id with a path parameter", req: secured("GET", "/v1/orders/..;/admin/dead-letters", shopperToken), status: 404, problem: "not-found"},
		{name: "order id with an encoded NUL", req: secured("GET", otherOrderPath+"%00", shopperToken), status: 400, problem: "invalid-request"},
		{name: "dead letter retry with encoded traversal", req: secured("POST", "/v1/admin/dead-letters/..%2F..%2Fetc%2Fpasswd/retry", adminToken), status: 400, problem: "invalid-request"},
		{name: "another shopper's order", req: secured("GET", otherOrderPath, shopperToken), status: 404, problem: "order-not-found"},
		{name: "another shopper's order via cookie", req: secured("GET", otherOrderPath, "", "Cookie", cookie(shopperToken)), status: 404, problem: "order-not-found"},
		{name: "another shopper's order with a revoked token", req: secured("GET", otherOrderPath, revoked.AccessToken), status: 401, problem: "unauthenticated", check: wantAuthenticate},

		// Admin routes as a shopper authenticated by cookie.
		{name: "create sale as shopper via cookie", req: func() testutil.Request {
			r := secured("POST", "/v1/admin/sales", "", "Cookie", cookie(shopperToken))
			r.Body = validSale()
			return r
		}(), status: 403, problem: "forbidden"},
		{name: "change sale as shopper via cookie", req: func() testutil.Request {
			r := secured("PATCH", "/v1/admin/sales/"+saleID, "", "Cookie", cookie(shopperToken))
			r.Body = map[string]any{"totalStock": 1}
			return r
		}(), status: 403, problem: "forbidden"},
		{name: "dead letters as shopper via cookie", req: secured("GET", "/v1/admin/dead-letters", "", "Cookie", cookie(shopperToken)), status: 403, problem: "forbidden"},
		{name: "dead letter retry as shopper via cookie", req: secured("POST", "/v1/admin/dead-letters/"+otherOrder.ID+"/retry", "", "Cookie", cookie(shopperToken)), status: 403, problem: "forbidden"},
		{name: "admin route with a self-made admin token in the cookie", req: secured("GET", "/v1/admin/dead-letters", "", "Cookie", cookie(adminClaimByShopper)), status: 401, problem: "unauthenticated", check: wantAuthenticate},

		// Passwords: the schema takes 10 to 72 characters, the policy refuses weak ones (422).
		{name: "register with a common password", req: register("common@example.com", "password123"), status: 422, problem: "weak-password"},
		{name: "register with a common password in capitals", req: register("capitals@example.com", "PASSWORD123"), status: 422, problem: "weak-password"},
		{name: "register with digits in a row", req: register("digits@example.com", "1234567890"), status: 422, problem: "weak-password"},
		{name: "register with one repeated character", req: register("repeated@example.com", "aaaaaaaaaaaa"), status: 422, problem: "weak-password"},
		{name: "register with too few distinct characters", req: register("distinct@example.com", "abababababab"), status: 422, problem: "weak-password"},
		{name: "register with the email in the password", req: register("hostile-mallory@example.com", "Hostile-Mallory!"), status: 422, problem: "weak-password"},
		{name: "register with 9 characters", req: register("nine@example.com", "Tr0ub4d&3"), status: 400, problem: "invalid-request"},
		{name: "register with 73 characters", req: register("long-password@example.com", strings.Repeat("Tr0ub4dor&3-", 7)[:73]), status: 400, problem: "invalid-request"},
		{name: "register with 40 characters of 80 bytes", req: register("bytes@example.com", strings.Repeat("ä", 40)), status: 400, problem: "invalid-request"},
		{name: "register with a password of the wrong type", req: testutil.Request{Method: "POST", Path: "/v1/auth/register", Body: map[string]any{"email": "type@example.com", "password": 1234567890}}, status: 400, problem: "invalid-request"},
		{name: "register an email already taken", req: register(sys.Config.AdminEmail, strong), status: 409, problem: "email-taken"},
		{name: "login with a wrong password", req: testutil.Request{Method: "POST", Path: "/v1/auth/login", Body: map[string]any{"email": sys.Config.AdminEmail, "password": "not-the-password"}}, status: 401, problem: "invalid-credentials"},
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
	if info := queueInfo(t, sys); info == nil || info.Size != 0 || info.ProcessedTotal != queueInfoBefore.ProcessedTotal ||
		info.FailedTotal != queueInfoBefore.FailedTotal {
		t.Errorf("order queue saw tasks: before %+v, after %+v", queueInfoBefore, info)
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

// gzipped is s compressed with gzip.
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	if _, err := io.WriteString(z, s); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
