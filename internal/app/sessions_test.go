package app_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/memory"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// Helpers reading and changing the fakes directly (no counted calls).

func storedSession(e *env, id uuid.UUID) (memory.StoredSession, bool) { return e.sess.mem.Session(id) }

func storedSessionCount(e *env) int { return e.sess.mem.Count() }

func setUserRole(t *testing.T, e *env, id uuid.UUID, role domain.Role) {
	t.Helper()
	if !e.store.SetUserRole(id, role) {
		t.Fatalf("user %s not in the repository", id)
	}
}

func deleteUser(e *env, id uuid.UUID) { e.store.DeleteUser(id) }

var sessionMethods = []string{"CreateSession", "RotateRefresh", "SessionActive", "RevokeSession", "RevokeUserSessions"}

func sessionCalls(e *env) map[string]int {
	m := map[string]int{}
	for _, name := range sessionMethods {
		m[name] = e.sess.count(name)
	}
	return m
}

// splitRefresh takes a refresh token apart: "<session uuid>.<secret>".
func splitRefresh(t *testing.T, token string) (uuid.UUID, string) {
	t.Helper()
	sid, secret, ok := strings.Cut(token, ".")
	if !ok || secret == "" || strings.Contains(secret, ".") {
		t.Fatalf("refresh token %q is not <session id>.<secret>", token)
	}
	id, err := uuid.Parse(sid)
	if err != nil || id.String() != sid {
		t.Fatalf("refresh token %q: session part is not a canonical uuid: %v", token, err)
	}
	return id, secret
}

func registerUser(t *testing.T, e *env, slug, email string) domain.User {
	t.Helper()
	u, err := e.app.Register.Handle(ctx, app.Register{TenantSlug: slug, Email: email, Password: "correct-horse"})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return u
}

func login(t *testing.T, e *env, slug, email string) app.TokenPair {
	t.Helper()
	pair, err := e.app.Login.Handle(ctx, app.Login{TenantSlug: slug, Email: email, Password: "correct-horse"})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return pair
}

// loginPrincipal logs in and returns the pair and the principal its access token was issued for.
func loginPrincipal(t *testing.T, e *env, slug, email string) (app.TokenPair, domain.Principal) {
	t.Helper()
	pair := login(t, e, slug, email)
	return pair, e.tokens.lastIssued()
}

func refresh(e *env, token string) (app.TokenPair, error) {
	return e.app.Refresh.Handle(ctx, token)
}

func wantOnlyCode(t *testing.T, what string, err error, want, not *domain.Error) {
	t.Helper()
	if !errors.Is(err, want) || errors.Is(err, not) {
		t.Fatalf("%s: error = %v, want %s", what, err, want.Code)
	}
}

func TestLoginOpensSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := registerUser(t, e, "", "ada@example.com")

	pair, p := loginPrincipal(t, e, "", "ada@example.com")
	sid, secret := splitRefresh(t, pair.RefreshToken)
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Errorf("refresh secret %q is not 256 random bits (base64url): %d bytes, %v", secret, len(raw), err)
	}
	stored, ok := storedSession(e, sid)
	if !ok {
		t.Fatalf("login did not create session %s", sid)
	}
	if want := (domain.Session{ID: sid, TenantID: e.tenant.ID, UserID: u.ID}); stored.Session != want {
		t.Errorf("stored session = %+v, want %+v", stored.Session, want)
	}
	sum := sha256.Sum256([]byte(secret))
	if stored.RefreshHash != hex.EncodeToString(sum[:]) {
		t.Errorf("stored refresh hash = %q, want the SHA-256 of the secret (never the secret)", stored.RefreshHash)
	}
	if pair.RefreshTTL != e.settings.RefreshTTL || pair.AccessTTL <= 0 {
		t.Errorf("TTLs = access %v, refresh %v; want refresh %v", pair.AccessTTL, pair.RefreshTTL, e.settings.RefreshTTL)
	}
	want := domain.Principal{UserID: u.ID, TenantID: e.tenant.ID, Email: u.Email, Role: domain.RoleShopper, SessionID: sid}
	if p != want {
		t.Errorf("access token issued for %+v, want %+v", p, want)
	}

	// A second login is a second session with its own secret.
	pair2 := login(t, e, "", "ada@example.com")
	sid2, secret2 := splitRefresh(t, pair2.RefreshToken)
	if sid2 == sid || secret2 == secret {
		t.Errorf("two logins share a session or secret: %s / %s", pair.RefreshToken, pair2.RefreshToken)
	}
	if n := storedSessionCount(e); n != 2 {
		t.Errorf("%d sessions stored after two logins, want 2", n)
	}
}

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := registerUser(t, e, "", "ada@example.com")
	p1 := login(t, e, "", "ada@example.com")
	sid, _ := splitRefresh(t, p1.RefreshToken)

	p2, err := refresh(e, p1.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	sid2, _ := splitRefresh(t, p2.RefreshToken)
	if p2.RefreshToken == p1.RefreshToken || sid2 != sid {
		t.Fatalf("refresh gave %q after %q, want a new secret in the same session", p2.RefreshToken, p1.RefreshToken)
	}
	if p2.AccessToken != "token:"+u.ID.String() || p2.RefreshTTL != e.settings.RefreshTTL {
		t.Fatalf("refreshed pair = %+v", p2)
	}
	if got := e.tokens.lastIssued().SessionID; got != sid {
		t.Fatalf("refreshed access token is for session %s, want %s", got, sid)
	}

	// The old token was rotated away: presenting it again is a replay and ends the session...
	_, err = refresh(e, p1.RefreshToken)
	wantOnlyCode(t, "replayed refresh token", err, domain.ErrRefreshTokenReused, domain.ErrInvalidRefreshToken)
	if _, ok := storedSession(e, sid); ok {
		t.Fatal("session survived a replayed refresh token")
	}
	// ...so the newest token is dead too.
	_, err = refresh(e, p2.RefreshToken)
	wantOnlyCode(t, "refresh after the replay", err, domain.ErrInvalidRefreshToken, domain.ErrRefreshTokenReused)
	if n := e.sess.count("RotateRefresh"); n != 3 {
		t.Errorf("RotateRefresh called %d times, want 3", n)
	}
}

func TestRefreshMalformed(t *testing.T) {
	t.Parallel()
	live := uuid.New().String()
	cases := map[string]string{
		"empty":             "",
		"no dot":            "no-dot-here",
		"uuid, no dot":      live,
		"bad uuid":          "not-a-uuid.c2VjcmV0",
		"empty secret":      live + ".",
		"only a dot":        ".",
		"empty session":     ".c2VjcmV0",
		"truncated uuid":    live[:35] + ".c2VjcmV0",
		"uuid with garbage": live + "x.c2VjcmV0",
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			registerUser(t, e, "", "ada@example.com")
			good := login(t, e, "", "ada@example.com")
			before, issued, lookups := sessionCalls(e), e.tokens.count("Issue"), e.users.calls.count("UserByID")

			_, err := refresh(e, token)
			wantOnlyCode(t, "refresh("+token+")", err, domain.ErrInvalidRefreshToken, domain.ErrRefreshTokenReused)
			if after := sessionCalls(e); !mapsEqual(after, before) {
				t.Errorf("a malformed token reached the session store: calls %v, before %v", after, before)
			}
			if e.tokens.count("Issue") != issued || e.users.calls.count("UserByID") != lookups {
				t.Error("a malformed token issued a token or looked a user up")
			}
			// The live session was not disturbed.
			if _, err := refresh(e, good.RefreshToken); err != nil {
				t.Fatalf("the live session no longer refreshes: %v", err)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRefreshUnknownSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := refresh(e, uuid.New().String()+".c2VjcmV0")
	wantOnlyCode(t, "unknown session", err, domain.ErrInvalidRefreshToken, domain.ErrRefreshTokenReused)
	if e.tokens.count("Issue") != 0 {
		t.Error("a token was issued for an unknown session")
	}
}

func TestRefreshDeletedUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := registerUser(t, e, "", "ada@example.com")
	pair := login(t, e, "", "ada@example.com")
	sid, _ := splitRefresh(t, pair.RefreshToken)
	issued := e.tokens.count("Issue")

	deleteUser(e, u.ID)
	got, err := refresh(e, pair.RefreshToken)
	wantOnlyCode(t, "refresh for a deleted user", err, domain.ErrInvalidRefreshToken, domain.ErrRefreshTokenReused)
	if got != (app.TokenPair{}) || e.tokens.count("Issue") != issued {
		t.Fatalf("tokens handed out for a deleted user: %+v", got)
	}
	if _, ok := storedSession(e, sid); ok {
		t.Fatal("the deleted user's session was not revoked")
	}
}

func TestRefreshCarriesCurrentRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := registerUser(t, e, "", "ada@example.com")
	pair, p := loginPrincipal(t, e, "", "ada@example.com")
	if p.Role != domain.RoleShopper {
		t.Fatalf("login issued role %q, want %q", p.Role, domain.RoleShopper)
	}

	setUserRole(t, e, u.ID, domain.RoleAdmin)
	p2, err := refresh(e, pair.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	want := p
	want.Role = domain.RoleAdmin
	if got := e.tokens.lastIssued(); got != want {
		t.Fatalf("refresh issued %+v, want %+v", got, want)
	}

	// And back: a demoted admin's next token says so.
	setUserRole(t, e, u.ID, domain.RoleShopper)
	if _, err := refresh(e, p2.RefreshToken); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	if got := e.tokens.lastIssued(); got != p {
		t.Fatalf("refresh after demotion issued %+v, want %+v", got, p)
	}
}

func TestLogoutEndsOnlyThatSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	registerUser(t, e, "", "ada@example.com")
	registerUser(t, e, "", "bob@example.com")
	phone, phoneP := loginPrincipal(t, e, "", "ada@example.com")
	laptop := login(t, e, "", "ada@example.com")
	bob := login(t, e, "", "bob@example.com")

	if err := e.app.Logout.Handle(ctx, phoneP); err != nil {
		t.Fatalf("logout: %v", err)
	}
	phoneID, _ := splitRefresh(t, phone.RefreshToken)
	if _, ok := storedSession(e, phoneID); ok {
		t.Fatal("logout left its session")
	}
	if n := storedSessionCount(e); n != 2 {
		t.Fatalf("%d sessions left, want 2", n)
	}
	_, err := refresh(e, phone.RefreshToken)
	wantOnlyCode(t, "refresh after logout", err, domain.ErrInvalidRefreshToken, domain.ErrRefreshTokenReused)
	for name, pair := range map[string]app.TokenPair{"same user's other session": laptop, "another user": bob} {
		if _, err := refresh(e, pair.RefreshToken); err != nil {
			t.Errorf("%s: refresh after someone's logout: %v", name, err)
		}
	}
}

func TestLogoutAllEndsTheUsersSessionsInTheTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := e.tenants.ensure("other-shop", "Other shop")
	ada := registerUser(t, e, "", "ada@example.com")
	registerUser(t, e, "", "bob@example.com")
	a1, adaP := loginPrincipal(t, e, "", "ada@example.com")
	a2 := login(t, e, "", "ada@example.com")
	bob := login(t, e, "", "bob@example.com")
	// A session of the same user id under another tenant: logout-all is scoped to the tenant.
	elsewhere, err := e.app.Sessions.Open(ctx, domain.User{ID: ada.ID, TenantID: other.ID, Email: ada.Email, Role: domain.RoleShopper})
	if err != nil {
		t.Fatalf("open session in another tenant: %v", err)
	}

	if err := e.app.LogoutAll.Handle(ctx, adaP); err != nil {
		t.Fatalf("logout-all: %v", err)
	}
	for _, pair := range []app.TokenPair{a1, a2} {
		id, _ := splitRefresh(t, pair.RefreshToken)
		if _, ok := storedSession(e, id); ok {
			t.Errorf("session %s of the user survived logout-all", id)
		}
	}
	if n := storedSessionCount(e); n != 2 {
		t.Fatalf("%d sessions left, want 2 (another user's, and the user's in another tenant)", n)
	}
	for name, pair := range map[string]app.TokenPair{"another user": bob, "same user, other tenant": elsewhere} {
		id, _ := splitRefresh(t, pair.RefreshToken)
		if _, ok := storedSession(e, id); !ok {
			t.Errorf("%s: session revoked by logout-all", name)
		}
	}
}
