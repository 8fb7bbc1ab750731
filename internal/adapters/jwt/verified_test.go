package jwt

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// A verified token is answered from the cache until its expiry plus the leeway, by its exact
// text only; then it is verified afresh (and refused once really expired).
func TestVerifiedTokensAreCachedUntilTheyExpire(t *testing.T) {
	i, err := NewIssuer(Config{Signing: Key{ID: "a", Secret: []byte(strings.Repeat("A", 32))}, Issuer: "flashsale",
		Audience: "flashsale-api", TTL: 15 * time.Minute, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := domain.Principal{UserID: uuid.New(), TenantID: uuid.New(), SessionID: uuid.New(), Role: domain.RoleShopper, Email: "ada@example.com"}
	tok, _, err := i.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := i.Verify(tok); err != nil || got != p {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	entry, ok := i.verified.cur[sha256.Sum256([]byte(tok))]
	if !ok || entry.principal != p {
		t.Fatalf("the verified token is not cached: %+v", entry)
	}
	if exp := time.Now().Add(15 * time.Minute).Add(30 * time.Second); entry.until.After(exp) || entry.until.Before(exp.Add(-time.Minute)) {
		t.Fatalf("cached until %v, want its expiry plus the leeway (about %v)", entry.until, exp)
	}
	if _, ok := i.verified.get(sha256.Sum256([]byte(tok)), entry.until.Add(-time.Millisecond)); !ok {
		t.Fatal("not served from the cache before its expiry")
	}
	if _, ok := i.verified.get(sha256.Sum256([]byte(tok)), entry.until); ok {
		t.Fatal("served from the cache at its expiry")
	}
	if _, err := i.Verify(tok + "\n"); err == nil { // another spelling is verified, and refused
		t.Fatal("a token with a trailing newline verifies")
	}
}

// The cache holds at most two generations: the older is dropped as a whole when the newer fills.
func TestVerifiedTokensAreBounded(t *testing.T) {
	v := newVerifiedTokens(2)
	now := time.Now()
	sum := func(n byte) [32]byte { return [32]byte{n} }
	for n := range byte(5) {
		v.put(sum(n), domain.Principal{Email: string('a' + n)}, now.Add(time.Hour))
	}
	if len(v.cur)+len(v.old) > 4 {
		t.Fatalf("%d + %d tokens held, want at most 4", len(v.cur), len(v.old))
	}
	for n, want := range []bool{false, false, true, true, true} {
		if _, ok := v.get(sum(byte(n)), now); ok != want {
			t.Errorf("token %d cached: %v, want %v", n, ok, want)
		}
	}
}
