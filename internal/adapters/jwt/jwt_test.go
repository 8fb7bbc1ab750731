package jwt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/jwt"
	"github.com/flashsale/flashsale/internal/domain"
)

var (
	keyA = jwt.Key{ID: "a", Secret: []byte(strings.Repeat("A", 32))}
	keyB = jwt.Key{ID: "b", Secret: []byte(strings.Repeat("B", 32))}
)

func issuer(t *testing.T, signing jwt.Key, verifying ...jwt.Key) *jwt.Issuer {
	t.Helper()
	i, err := jwt.NewIssuer(jwt.Config{Signing: signing, Verifying: verifying, Issuer: "flashsale",
		Audience: "flashsale-api", TTL: 15 * time.Minute, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// signToken signs claims with method and key, under kid when set: tokens the issuer did not make.
func signToken(tb testing.TB, method gojwt.SigningMethod, key any, kid string, claims gojwt.MapClaims) string {
	tb.Helper()
	tok := gojwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestIssueAndVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	p := domain.Principal{UserID: uuid.New(), TenantID: uuid.New(), Email: "ada@example.com", Role: domain.RoleAdmin, SessionID: uuid.New()}
	i := issuer(t, keyA)
	tok, ttl, err := i.Issue(p)
	if err != nil || ttl != 15*time.Minute {
		t.Fatalf("issue: %v %v", ttl, err)
	}
	got, err := i.Verify(tok)
	if err != nil || got != p {
		t.Fatalf("verify = %+v, %v; want %+v", got, err, p)
	}
}

func TestVerifyRefusesForgedTokens(t *testing.T) {
	t.Parallel()
	i := issuer(t, keyA)
	now := time.Now()
	good := func() gojwt.MapClaims {
		return gojwt.MapClaims{"iss": "flashsale", "aud": "flashsale-api", "sub": uuid.NewString(),
			"tid": uuid.NewString(), "sid": uuid.NewString(), "role": "shopper", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
	}
	with := func(k string, v any) gojwt.MapClaims { c := good(); c[k] = v; return c }
	without := func(k string) gojwt.MapClaims { c := good(); delete(c, k); return c }
	cases := map[string]string{
		"control: well formed": signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", good()),
		"alg none":             signToken(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, "a", good()),
		"HS512 not HS256":      signToken(t, gojwt.SigningMethodHS512, keyA.Secret, "a", good()),
		"wrong key":            signToken(t, gojwt.SigningMethodHS256, keyB.Secret, "a", good()),
		"unknown kid":          signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "zz", good()),
		"no kid":               signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "", good()),
		"expired":              signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", with("exp", now.Add(-time.Minute).Unix())),
		"no exp":               signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", without("exp")),
		"not yet valid":        signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", with("nbf", now.Add(time.Hour).Unix())),
		"wrong audience":       signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", with("aud", "another-api")),
		"wrong issuer":         signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", with("iss", "evil")),
		"unknown role":         signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", with("role", "root")),
		"subject not a uuid":   signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", with("sub", "1 OR 1=1")),
		"no tenant":            signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", without("tid")),
		"no session":           signToken(t, gojwt.SigningMethodHS256, keyA.Secret, "a", without("sid")),
		"garbage":              "not.a.token",
		"empty":                "",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := i.Verify(tok)
			if name == "control: well formed" {
				if err != nil {
					t.Fatalf("the control token must verify: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrUnauthenticated) {
				t.Fatalf("Verify = %v, want ErrUnauthenticated", err)
			}
		})
	}
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	t.Parallel()
	p := domain.Principal{UserID: uuid.New(), TenantID: uuid.New(), Role: domain.RoleShopper, SessionID: uuid.New()}
	old, _, err := issuer(t, keyA).Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	rotated := issuer(t, keyB, keyA) // signs with b, still accepts a
	if _, err := rotated.Verify(old); err != nil {
		t.Fatalf("a token signed with the previous key must stay valid: %v", err)
	}
	fresh, _, _ := rotated.Issue(p)
	if _, err := issuer(t, keyA).Verify(fresh); err == nil {
		t.Fatal("a node that does not know key b must refuse its tokens")
	}
	if _, err := issuer(t, keyB).Verify(old); err == nil {
		t.Fatal("once key a is retired its tokens must be refused")
	}
}

func TestShortSecretRefused(t *testing.T) {
	t.Parallel()
	if _, err := jwt.NewIssuer(jwt.Config{Signing: jwt.Key{ID: "x", Secret: []byte("short")}}); err == nil {
		t.Fatal("a 5-byte secret must be refused")
	}
}
