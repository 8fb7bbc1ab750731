package bcrypt

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// work counts the rounds of bcrypt a Hasher's comparisons do: 2^cost each, the time they take
// on any machine up to a constant.
type work struct {
	mu     sync.Mutex
	rounds int
}

func (w *work) count(h *Hasher) {
	h.compare = func(hash, password []byte) error {
		if c, err := bcrypt.Cost(hash); err == nil {
			w.mu.Lock()
			w.rounds += 1 << c
			w.mu.Unlock()
		}
		return bcrypt.CompareHashAndPassword(hash, password)
	}
}

func (w *work) take() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rounds
	w.rounds = 0
	return r
}

func hashAt(t testing.TB, cost int, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestVerifyCostsTodaysCostWhateverTheHash: once BCRYPT_COST was raised, an account hashed at
// the old cost answered a wrong password in a quarter of the time (64 ms against 255 ms at 10
// and 12) that an unknown address takes (the login checks it against a dummy hash of today's
// cost): the accounts that exist could be told apart. Every Verify now does the work of one
// comparison at today's cost, right password or wrong, whatever cost the hash was made at.
func TestVerifyCostsTodaysCostWhateverTheHash(t *testing.T) {
	t.Parallel()
	const today = 7
	h, err := NewHasher(today)
	if err != nil {
		t.Fatal(err)
	}
	var w work
	w.count(h)
	dummy, err := h.Hash("what the login checks an unknown address against")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash, password string
		ok                   bool
	}{
		{"an unknown address (the dummy hash)", dummy, "guess", false},
		{"today's cost, wrong password", hashAt(t, today, "secret-one"), "guess", false},
		{"today's cost, right password", hashAt(t, today, "secret-one"), "secret-one", true},
		{"the lowest cost, wrong password", hashAt(t, bcrypt.MinCost, "secret-two"), "guess", false},
		{"the lowest cost, right password", hashAt(t, bcrypt.MinCost, "secret-two"), "secret-two", true},
		{"one below, wrong password", hashAt(t, today-1, "secret-three"), "guess", false},
		{"two below, right password", hashAt(t, today-2, "secret-four"), "secret-four", true},
	} {
		w.take()
		ok, err := h.Verify(tc.hash, tc.password)
		if err != nil || ok != tc.ok {
			t.Errorf("%s: Verify = %v, %v, want %v", tc.name, ok, err, tc.ok)
		}
		if rounds := w.take(); rounds != 1<<today {
			t.Errorf("%s: %d rounds of bcrypt, want %d (one comparison at cost %d)", tc.name, rounds, 1<<today, today)
		}
	}
	if _, err := h.Verify("not a bcrypt hash", "guess"); err == nil {
		t.Error("Verify accepted a malformed hash")
	}
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(6)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hash string
		want bool
	}{
		{hashAt(t, 6, "pw"), false},
		{hashAt(t, 5, "pw"), true},
		{hashAt(t, 7, "pw"), true}, // the cost was lowered: back to today's
		{"not a bcrypt hash", false},
	} {
		if got := h.NeedsRehash(tc.hash); got != tc.want {
			t.Errorf("NeedsRehash(%.7s...) = %v, want %v", tc.hash, got, tc.want)
		}
	}
	if fresh, _ := h.Hash("pw"); h.NeedsRehash(fresh) {
		t.Error("a fresh hash needs a rehash")
	}
}

// BenchmarkVerify measures what a login's check costs at BCRYPT_COST 12 for an account hashed at
// 12, for one hashed at 10 (before the cost was raised) and for an unknown address (the dummy
// hash): all three take the time of one comparison at 12.
//
//	go test ./internal/adapters/bcrypt -run '^$' -bench Verify -benchtime 10x
func BenchmarkVerify(b *testing.B) {
	const today = 12
	h, err := NewHasher(today)
	if err != nil {
		b.Fatal(err)
	}
	dummy, _ := h.Hash("what the login checks an unknown address against")
	h.dummy(10) // made once, at the first login of an old account: not part of the measure
	h.dummy(11)
	for _, bc := range []struct{ name, hash string }{
		{"unknown address", dummy},
		{fmt.Sprintf("wrong password, hash at cost %d", today), hashAt(b, today, "secret")},
		{"wrong password, hash at cost 10", hashAt(b, 10, "secret")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if ok, err := h.Verify(bc.hash, "guess"); ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
