package app_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		email    string
		password string
		want     error
	}{
		{"right credentials", "ada@example.com", "correct-horse", nil},
		{"address spelled differently", "  Ada@Example.COM ", "correct-horse", nil},
		{"wrong password", "ada@example.com", "wrong-horse", domain.ErrInvalidCredentials},
		{"unknown email", "nobody@example.com", "correct-horse", domain.ErrInvalidCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u, err := e.app.Register.Handle(ctx, app.Register{Email: "Ada@example.com", Password: "correct-horse"})
			if err != nil {
				t.Fatalf("register: %v", err)
			}

			tok, err := e.app.Login.Handle(ctx, app.Login{Email: tc.email, Password: tc.password})
			if tc.want != nil {
				wantErr(t, err, tc.want)
				if err != tc.want {
					t.Errorf("error = %v, want exactly %v (no hint which part was wrong)", err, tc.want)
				}
				if tok != (app.TokenPair{}) || e.tokens.count("Issue") != 0 {
					t.Error("a token was issued")
				}
			} else if err != nil || tok.AccessToken != "token:"+u.ID.String() || tok.AccessTTL <= 0 || tok.RefreshToken == "" {
				t.Fatalf("login = %+v, %v", tok, err)
			}
			// One hash comparison whether or not the address has an account, on a real hash.
			if n := e.hasher.count("Verify"); n != 1 {
				t.Errorf("Verify called %d times, want 1", n)
			}
			for _, h := range e.hasher.verified {
				if !strings.HasPrefix(h, hashPrefix) {
					t.Errorf("Verify asked about %q, not a hash the hasher made", h)
				}
			}
		})
	}
}

// TestLoginRehashesAnOldCostHash: a hash made at another cost than today's is replaced by one
// of today's on the login that proves the password, and only then: not on a wrong password, not
// for a hash of today's cost. A failed replacement does not fail the login.
func TestLoginRehashesAnOldCostHash(t *testing.T) {
	t.Parallel()
	const password = "correct-horse"
	for _, tc := range []struct {
		name       string
		stored     string
		password   string
		replaceErr error
		want       error
		rehashed   bool
	}{
		{name: "old cost, right password", stored: staleHashPrefix + password, password: password, rehashed: true},
		{name: "old cost, wrong password", stored: staleHashPrefix + password, password: "wrong-horse", want: domain.ErrInvalidCredentials},
		{name: "today's cost, right password", stored: hashPrefix + password, password: password},
		{name: "old cost, the store fails to replace", stored: staleHashPrefix + password, password: password, replaceErr: errors.New("database gone")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.users.ReplaceErr = tc.replaceErr
			u := domain.User{ID: uuid.New(), TenantID: e.tenant.ID, Email: "ada@example.com", PasswordHash: tc.stored,
				Role: domain.RoleShopper, CreatedAt: e.clock.Now()}
			mustSetUp(e.store.CreateUser(ctx, u))

			_, err := e.app.Login.Handle(ctx, app.Login{Email: u.Email, Password: tc.password})
			if tc.want != nil {
				wantErr(t, err, tc.want)
			} else if err != nil {
				t.Fatalf("login: %v", err)
			}
			stored, err := e.store.UserByID(ctx, u.TenantID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rehashed {
				if stored.PasswordHash != hashPrefix+password || e.hasher.count("Hash") != 1 {
					t.Fatalf("stored hash %q after %d Hash calls, want today's %q", stored.PasswordHash, e.hasher.count("Hash"), hashPrefix+password)
				}
				return
			}
			if stored.PasswordHash != tc.stored {
				t.Fatalf("stored hash %q, want %q unchanged", stored.PasswordHash, tc.stored)
			}
			wantReplace := 0
			if tc.replaceErr != nil {
				wantReplace = 1
				if e.log.logged(slog.LevelWarn, "rehash") != 1 {
					t.Error("the failed rehash was not logged")
				}
			}
			if n := e.users.calls.count("ReplacePasswordHash"); n != wantReplace {
				t.Fatalf("ReplacePasswordHash called %d times, want %d", n, wantReplace)
			}
		})
	}
}

func TestLoginUnknownTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.app.Login.Handle(ctx, app.Login{TenantSlug: "nope", Email: "a@example.com", Password: "x"})
	wantErr(t, err, domain.ErrTenantNotFound)
}

func TestRegister(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		password string
		want     error
	}{
		{"72 bytes", strings.Repeat("abcdefgh", 9), nil},
		{"73 bytes", strings.Repeat("abcdefgh", 9) + "i", domain.ErrInvalidRequest},
		{"24 three-byte runes (72 bytes)", strings.Repeat("€₩₽₹₿₫", 4), nil},
		{"25 three-byte runes (75 bytes, 25 characters)", strings.Repeat("€₩₽₹₿", 5), domain.ErrInvalidRequest},
		{"too few different characters", strings.Repeat("ab", 10), domain.ErrWeakPassword},
		{"a well-known password", "Password123", domain.ErrWeakPassword},
		{"under 10 characters", "Ab1!xyz", domain.ErrWeakPassword},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u, err := e.app.Register.Handle(ctx, app.Register{Email: " New@Example.com", Password: tc.password})
			if tc.want != nil {
				wantErr(t, err, tc.want)
				if e.hasher.count("Hash") != 0 || e.users.count() != 0 {
					t.Error("a refused password was hashed or stored")
				}
				return
			}
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			if u.Email != "new@example.com" || u.Role != domain.RoleShopper || u.TenantID != e.tenant.ID ||
				u.PasswordHash != hashPrefix+tc.password {
				t.Errorf("user = %+v", u)
			}
		})
	}
}

func TestRegisterEmailTaken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.app.Register.Handle(ctx, app.Register{Email: "a@example.com", Password: "correct-horse"}); err != nil {
		t.Fatalf("register: %v", err)
	}
	_, err := e.app.Register.Handle(ctx, app.Register{Email: "A@EXAMPLE.com", Password: "correct-horse"})
	wantErr(t, err, domain.ErrEmailTaken)
}

func TestRegisterRefusesThePasswordHoldingTheEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.app.Register.Handle(ctx, app.Register{Email: "Margaret@example.com", Password: "i-am-MARGARET-2026"})
	wantErr(t, err, domain.ErrWeakPassword)
}
