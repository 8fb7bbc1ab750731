package app_test

import (
	"strings"
	"testing"

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
