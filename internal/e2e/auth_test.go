package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// authTokens is a login or refresh answer: the JSON pair and the cookies set with it.
type authTokens struct {
	Access, Refresh string
	ExpiresIn       float64
	RefreshExpires  float64
	Cookies         map[string]*http.Cookie
}

// setCookies parses every Set-Cookie header of an answer, by cookie name.
func setCookies(t *testing.T, r testutil.Response) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if _, dup := out[c.Name]; dup {
			t.Fatalf("cookie %s set twice: %q", c.Name, r.Header.Values("Set-Cookie"))
		}
		out[c.Name] = c
	}
	return out
}

// tokensOf reads a 200 login or refresh answer.
func tokensOf(t *testing.T, what string, r testutil.Response) authTokens {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.Status, r.Body)
	}
	m := r.JSON(t)
	access, _ := m["accessToken"].(string)
	refresh, _ := m["refreshToken"].(string)
	if access == "" || refresh == "" || m["tokenType"] != "Bearer" {
		t.Fatalf("%s: token response %s", what, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
	}
	exp, _ := m["expiresIn"].(float64)
	rexp, _ := m["refreshExpiresIn"].(float64)
	return authTokens{Access: access, Refresh: refresh, ExpiresIn: exp, RefreshExpires: rexp, Cookies: setCookies(t, r)}
}

func authRegister(t *testing.T, c *testutil.Client, email, password string) {
	t.Helper()
	r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/register",
		Body: map[string]any{"email": email, "password": password}})
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", email, r.Status, r.Body)
	}
}

func authLogin(t *testing.T, c *testutil.Client, email, password string) authTokens {
	t.Helper()
	return tokensOf(t, "login "+email, c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
		Body: map[string]any{"email": email, "password": password}}))
}

// authPassword passes the password policy for every address these tests use.
const authPassword = "Tr0ub4dor&3-staple"

func refreshReq(token string) testutil.Request {
	return testutil.Request{Method: "POST", Path: "/v1/auth/refresh", Body: map[string]any{"refreshToken": token}}
}

// meStatus is the status of GET /v1/me with token as a bearer token.
func meStatus(t *testing.T, c *testutil.Client, token string) int {
	t.Helper()
	r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me", Token: token})
	if r.Status == http.StatusUnauthorized && r.ProblemType() != "unauthenticated" {
		t.Errorf("/v1/me 401 is %q, want unauthenticated: %s", r.ProblemType(), r.Body)
	}
	return r.Status
}

// expectProblem fails unless r is status with problem type typ.
func expectProblem(t *testing.T, what string, r testutil.Response, status int, typ string) {
	t.Helper()
	if r.Status != status || r.ProblemType() != typ {
		t.Fatalf("%s: %d %q, want %d %s: %s", what, r.Status, r.ProblemType(), status, typ, r.Body)
	}
}

// expectCleared fails unless the answer deletes both auth cookies.
func expectCleared(t *testing.T, what string, r testutil.Response) {
	t.Helper()
	cookies := setCookies(t, r)
	for name, path := range map[string]string{"fs_access": "/", "fs_refresh": "/v1/auth"} {
		c := cookies[name]
		if c == nil {
			t.Fatalf("%s: no %s cookie set: %q", what, name, r.Header.Values("Set-Cookie"))
		}
		// http.ParseSetCookie reads "Max-Age=0" (delete now) as MaxAge -1.
		if c.MaxAge >= 0 || c.Value != "" || c.Path != path || !c.HttpOnly {
			t.Fatalf("%s: %s not cleared: %q", what, name, c.Raw)
		}
	}
}

// TestAuthRefreshRotationRevokesFamilyOnReuse: login hands out a pair as JSON and as cookies;
// refresh rotates it; replaying the rotated token revokes the whole session, so the newest
// refresh token and every access token of the session stop working.
func TestAuthRefreshRotationRevokesFamilyOnReuse(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	authRegister(t, c, "rota@example.com", authPassword)
	first := authLogin(t, c, "rota@example.com", authPassword)

	if first.ExpiresIn != 900 || first.RefreshExpires != 604800 {
		t.Fatalf("login: expiresIn %v refreshExpiresIn %v, want 900 and 604800", first.ExpiresIn, first.RefreshExpires)
	}
	if len(first.Cookies) != 2 {
		t.Fatalf("login set %d cookies, want 2: %v", len(first.Cookies), first.Cookies)
	}
	access, refresh := first.Cookies["fs_access"], first.Cookies["fs_refresh"]
	if access == nil || access.Value != first.Access || access.Path != "/" || !access.HttpOnly ||
		access.SameSite != http.SameSiteStrictMode || access.MaxAge != 900 || access.Secure {
		t.Fatalf("fs_access cookie: %+v", access)
	}
	if refresh == nil || refresh.Value != first.Refresh || refresh.Path != "/v1/auth" || !refresh.HttpOnly ||
		refresh.SameSite != http.SameSiteStrictMode || refresh.MaxAge != 604800 || refresh.Secure {
		t.Fatalf("fs_refresh cookie: %+v", refresh)
	}

	second := tokensOf(t, "refresh", c.Do(t, refreshReq(first.Refresh)))
	if second.Access == first.Access || second.Refresh == first.Refresh {
		t.Fatal("refresh returned the same tokens")
	}
	if second.ExpiresIn != 900 || second.RefreshExpires != 604800 {
		t.Fatalf("refresh: expiresIn %v refreshExpiresIn %v", second.ExpiresIn, second.RefreshExpires)
	}
	if second.Cookies["fs_access"] == nil || second.Cookies["fs_access"].Value != second.Access ||
		second.Cookies["fs_refresh"] == nil || second.Cookies["fs_refresh"].Value != second.Refresh {
		t.Fatalf("refresh cookies do not carry the new pair: %v", second.Cookies)
	}
	// Same session id, new secret: the session part of both refresh tokens is the same.
	if sid, _, _ := strings.Cut(first.Refresh, "."); !strings.HasPrefix(second.Refresh, sid+".") {
		t.Fatalf("refresh changed the session: %s -> %s", first.Refresh, second.Refresh)
	}
	if s := meStatus(t, c, second.Access); s != http.StatusOK {
		t.Fatalf("new access token: /v1/me %d", s)
	}
	if s := meStatus(t, c, first.Access); s != http.StatusOK {
		t.Fatalf("access token of the live session before reuse: /v1/me %d", s)
	}

	// The thief (or the victim) replays the rotated token: the session dies.
	reused := c.Do(t, refreshReq(first.Refresh))
	expectProblem(t, "replayed refresh token", reused, http.StatusUnauthorized, "refresh-token-reused")
	expectCleared(t, "replayed refresh token", reused)
	expectProblem(t, "newest refresh token after reuse", c.Do(t, refreshReq(second.Refresh)),
		http.StatusUnauthorized, "invalid-refresh-token")
	for i, tok := range []string{first.Access, second.Access} {
		if s := meStatus(t, c, tok); s != http.StatusUnauthorized {
			t.Fatalf("access token %d of the revoked session: /v1/me %d, want 401", i, s)
		}
	}
	// Not an artifact of rate limits or a broken server: a fresh login works.
	third := authLogin(t, c, "rota@example.com", authPassword)
	if s := meStatus(t, c, third.Access); s != http.StatusOK {
		t.Fatalf("fresh login after revocation: /v1/me %d", s)
	}
}

// TestAuthRefreshViaCookie: a browser refreshes with the fs_refresh cookie alone, no body.
func TestAuthRefreshViaCookie(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	authRegister(t, c, "cookie-refresh@example.com", authPassword)
	first := authLogin(t, c, "cookie-refresh@example.com", authPassword)

	second := tokensOf(t, "refresh by cookie", c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/refresh",
		Header: map[string]string{"Cookie": "fs_refresh=" + first.Refresh}}))
	if second.Refresh == first.Refresh || second.Cookies["fs_refresh"] == nil ||
		second.Cookies["fs_refresh"].Value != second.Refresh {
		t.Fatalf("refresh by cookie did not rotate: %+v", second)
	}
	if s := meStatus(t, c, second.Access); s != http.StatusOK {
		t.Fatalf("access token from the cookie refresh: /v1/me %d", s)
	}
	// The cookie rotated the same token a body would have: the old cookie is now a replay.
	expectProblem(t, "replayed refresh cookie", c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/refresh",
		Header: map[string]string{"Cookie": "fs_refresh=" + first.Refresh}}), http.StatusUnauthorized, "refresh-token-reused")
	// No body and no cookie: nothing to refresh.
	expectProblem(t, "refresh with nothing", c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/refresh"}),
		http.StatusUnauthorized, "invalid-refresh-token")
}

// TestLogoutRevokesSessionAtOnce: logout kills this session's access and refresh tokens before
// the access token expires; another session of the same user lives on.
func TestLogoutRevokesSessionAtOnce(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	authRegister(t, c, "logout@example.com", authPassword)
	phone := authLogin(t, c, "logout@example.com", authPassword)
	laptop := authLogin(t, c, "logout@example.com", authPassword)

	out := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/logout", Token: phone.Access})
	if out.Status != http.StatusNoContent || len(out.Body) != 0 {
		t.Fatalf("logout: %d %s", out.Status, out.Body)
	}
	expectCleared(t, "logout", out)
	if s := meStatus(t, c, phone.Access); s != http.StatusUnauthorized {
		t.Fatalf("access token after logout: /v1/me %d, want 401", s)
	}
	expectProblem(t, "refresh token after logout", c.Do(t, refreshReq(phone.Refresh)),
		http.StatusUnauthorized, "invalid-refresh-token")
	// A second logout with the dead token is refused, not a silent 204.
	expectProblem(t, "logout twice", c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/logout", Token: phone.Access}),
		http.StatusUnauthorized, "unauthenticated")

	if s := meStatus(t, c, laptop.Access); s != http.StatusOK {
		t.Fatalf("other session's access token: /v1/me %d", s)
	}
	next := tokensOf(t, "other session's refresh", c.Do(t, refreshReq(laptop.Refresh)))
	if s := meStatus(t, c, next.Access); s != http.StatusOK {
		t.Fatalf("other session after refresh: /v1/me %d", s)
	}
}

// TestLogoutAllRevokesEverySessionOfTheUser: logout-all from one device ends every session of
// the user, and only of that user.
func TestLogoutAllRevokesEverySessionOfTheUser(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	authRegister(t, c, "everywhere@example.com", authPassword)
	authRegister(t, c, "bystander@example.com", authPassword)
	one := authLogin(t, c, "everywhere@example.com", authPassword)
	two := authLogin(t, c, "everywhere@example.com", authPassword)
	other := authLogin(t, c, "bystander@example.com", authPassword)
	for _, tok := range []string{one.Access, two.Access, other.Access} {
		if s := meStatus(t, c, tok); s != http.StatusOK {
			t.Fatalf("before logout-all: /v1/me %d", s)
		}
	}

	out := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/logout-all", Token: two.Access})
	if out.Status != http.StatusNoContent {
		t.Fatalf("logout-all: %d %s", out.Status, out.Body)
	}
	expectCleared(t, "logout-all", out)
	for i, s := range []authTokens{one, two} {
		if st := meStatus(t, c, s.Access); st != http.StatusUnauthorized {
			t.Fatalf("session %d access token after logout-all: /v1/me %d, want 401", i+1, st)
		}
		expectProblem(t, "refresh token after logout-all", c.Do(t, refreshReq(s.Refresh)),
			http.StatusUnauthorized, "invalid-refresh-token")
	}
	if s := meStatus(t, c, other.Access); s != http.StatusOK {
		t.Fatalf("another user's session after logout-all: /v1/me %d", s)
	}
	tokensOf(t, "another user's refresh after logout-all", c.Do(t, refreshReq(other.Refresh)))
}

// TestCookieAuthentication: the fs_access cookie alone authenticates; a forged one does not.
func TestCookieAuthentication(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	authRegister(t, c, "cookie-auth@example.com", authPassword)
	tok := authLogin(t, c, "cookie-auth@example.com", authPassword)

	me := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me", Header: map[string]string{"Cookie": "fs_access=" + tok.Access}})
	if me.Status != http.StatusOK || me.JSON(t)["email"] != "cookie-auth@example.com" {
		t.Fatalf("/v1/me by cookie: %d %s", me.Status, me.Body)
	}
	expectProblem(t, "/v1/me with a forged cookie", c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me",
		Header: map[string]string{"Cookie": "fs_access=" + tok.Access + "x"}}), http.StatusUnauthorized, "unauthenticated")
	// The refresh cookie is no access token.
	expectProblem(t, "/v1/me with the refresh cookie only", c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me",
		Header: map[string]string{"Cookie": "fs_refresh=" + tok.Refresh}}), http.StatusUnauthorized, "unauthenticated")
	// Logout by cookie ends the session the cookie belongs to.
	out := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/logout", Header: map[string]string{"Cookie": "fs_access=" + tok.Access}})
	if out.Status != http.StatusNoContent {
		t.Fatalf("logout by cookie: %d %s", out.Status, out.Body)
	}
	expectProblem(t, "/v1/me by cookie after logout", c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me",
		Header: map[string]string{"Cookie": "fs_access=" + tok.Access}}), http.StatusUnauthorized, "unauthenticated")
}

// TestAuthSecureCookies: COOKIE_SECURE marks both auth cookies Secure (on login and on logout);
// the test environment's defaults do not.
func TestAuthSecureCookies(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{true, false} {
		sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true,
			Configure: func(c *config.Config) { c.CookieSecure = secure }})
		if sys.Config.SecureCookies() != secure {
			t.Fatalf("SecureCookies() = %v, want %v", sys.Config.SecureCookies(), secure)
		}
		c := testutil.NewClient(sys.URL)
		tok := authLogin(t, c, sys.Config.AdminEmail, testutil.AdminPassword)
		out := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/logout", Token: tok.Access})
		if out.Status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", out.Status, out.Body)
		}
		for what, cookies := range map[string]map[string]*http.Cookie{"login": tok.Cookies, "logout": setCookies(t, out)} {
			for _, name := range []string{"fs_access", "fs_refresh"} {
				ck := cookies[name]
				if ck == nil {
					t.Fatalf("COOKIE_SECURE=%v %s: no %s cookie", secure, what, name)
				}
				_, attrs, _ := strings.Cut(ck.Raw, ";")
				if ck.Secure != secure || strings.Contains(attrs, "Secure") != secure {
					t.Fatalf("COOKIE_SECURE=%v %s: %s is %q", secure, what, name, ck.Raw)
				}
			}
		}
	}
}

// TestKeyRotation: a node signing with a new key (k2) and still verifying the retired one (k1)
// accepts tokens of nodes not yet rotated; a node that knows only k1 refuses k2 tokens, and one
// that knows only k2 refuses k1 tokens.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	a := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	if a.Config.JWTKeyID != "k1" || a.Config.JWTPreviousKeys != "" {
		t.Fatalf("system A keys: kid %q, previous %q", a.Config.JWTKeyID, a.Config.JWTPreviousKeys)
	}
	shared := &testutil.Redis{Prefix: a.Config.RedisPrefix, Queue: a.Config.OrderQueue}
	newSecret := "rotated-secret-0123456789-abcdefghijklmn" // 40 bytes
	if len(newSecret) != 40 {
		t.Fatalf("new secret is %d bytes", len(newSecret))
	}
	b := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, DatabaseURL: a.Config.DatabaseURL, Redis: shared,
		Configure: func(c *config.Config) {
			c.JWTKeyID, c.JWTSecret, c.JWTPreviousKeys = "k2", newSecret, "k1:"+a.Config.JWTSecret
		}})
	cNode := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, DatabaseURL: a.Config.DatabaseURL, Redis: shared,
		Configure: func(c *config.Config) { c.JWTKeyID, c.JWTSecret = "k2", newSecret }})
	ca, cb, cc := testutil.NewClient(a.URL), testutil.NewClient(b.URL), testutil.NewClient(cNode.URL)

	authRegister(t, ca, "rotate@example.com", authPassword)
	fromA := authLogin(t, ca, "rotate@example.com", authPassword).Access
	fromB := authLogin(t, cb, "rotate@example.com", authPassword).Access

	for _, tc := range []struct {
		what   string
		client *testutil.Client
		token  string
		want   int
	}{
		{"A's k1 token on A", ca, fromA, http.StatusOK},
		{"A's k1 token on B (k2 + previous k1)", cb, fromA, http.StatusOK},
		{"B's k2 token on B", cb, fromB, http.StatusOK},
		{"B's k2 token on A (k1 only)", ca, fromB, http.StatusUnauthorized},
		{"B's k2 token on C (k2 only)", cc, fromB, http.StatusOK},
		{"A's k1 token on C (k2 only)", cc, fromA, http.StatusUnauthorized},
	} {
		if s := meStatus(t, tc.client, tc.token); s != tc.want {
			t.Errorf("%s: /v1/me %d, want %d", tc.what, s, tc.want)
		}
	}
}

// TestLoginRehashesToTheCurrentCost: after BCRYPT_COST was raised, an account keeps its old
// hash until its owner logs in; that login replaces it with one of today's cost, and the
// password keeps working. A wrong password replaces nothing.
func TestLoginRehashesToTheCurrentCost(t *testing.T) {
	t.Parallel()
	const today, before = 5, 4
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, Configure: func(c *config.Config) { c.BcryptCost = today }})
	c := testutil.NewClient(sys.URL)
	ctx := context.Background()
	u := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	old, err := bcrypt.GenerateFromPassword([]byte("Tr0ub4dor&3-horse"), before)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Pool.Exec(ctx, "UPDATE users SET password_hash = $1 WHERE id = $2", string(old), u.ID); err != nil {
		t.Fatal(err)
	}
	storedCost := func() int {
		var hash string
		if err := sys.Pool.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", u.ID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			t.Fatalf("stored hash %q: %v", hash, err)
		}
		return cost
	}
	login := func(password string) int {
		return c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
			Body: map[string]any{"email": u.Email, "password": password}}).Status
	}

	if s := login("wrong-password"); s != http.StatusUnauthorized || storedCost() != before {
		t.Fatalf("wrong password: %d, stored cost %d, want 401 and %d", s, storedCost(), before)
	}
	if s := login("Tr0ub4dor&3-horse"); s != http.StatusOK {
		t.Fatalf("login with the old hash: %d", s)
	}
	if got := storedCost(); got != today {
		t.Fatalf("stored cost %d after the login, want %d", got, today)
	}
	if s := login("Tr0ub4dor&3-horse"); s != http.StatusOK {
		t.Fatalf("login with the new hash: %d", s)
	}
}
