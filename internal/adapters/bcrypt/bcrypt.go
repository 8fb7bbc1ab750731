// Package bcrypt hashes passwords with bcrypt at a configurable cost.
package bcrypt

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/flashsale/flashsale/internal/ports"
)

// Hasher implements ports.PasswordHasher.
type Hasher struct {
	cost int
	// compare is bcrypt.CompareHashAndPassword; a test counts the work through it.
	compare func(hash, password []byte) error

	mu      sync.Mutex
	dummies map[int][]byte // a hash at each cost below cost, to spend that cost's work on
}

var _ ports.PasswordHasher = (*Hasher)(nil)

// NewHasher uses cost (bcrypt.MinCost..MaxCost; 12 is a sound production value).
func NewHasher(cost int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt: cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return &Hasher{cost: cost, compare: bcrypt.CompareHashAndPassword, dummies: map[int][]byte{}}, nil
}

// Hash implements ports.PasswordHasher.
func (h *Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	return string(b), err
}

// Verify implements ports.PasswordHasher. A comparison at cost c does 2^c rounds of work, so a
// hash made at a lower cost than today's (BCRYPT_COST was raised since) would answer a wrong
// password in a fraction of the time a hash of today's cost takes, and of the time the login of
// an unknown address takes (one comparison with a dummy hash of today's cost): an attacker could
// tell the accounts that exist, and which are old. Verify tops the work up with one comparison
// at each cost from the hash's up to today's, 2^old + (2^old + ... + 2^(cost-1)) = 2^cost, so
// every Verify does the work of one comparison at today's cost. A hash of a higher cost (the
// cost was lowered) still costs its own: see NeedsRehash.
func (h *Hasher) Verify(hash, password string) (bool, error) {
	err := h.compare([]byte(hash), []byte(password))
	if hashCost, costErr := bcrypt.Cost([]byte(hash)); costErr == nil {
		for c := hashCost; c < h.cost; c++ {
			_ = h.compare(h.dummy(c), []byte(password))
		}
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, err
	}
}

// NeedsRehash implements ports.PasswordHasher: a hash of another cost than today's. A hash that
// is no bcrypt hash at all needs none (Verify refuses it anyway).
func (h *Hasher) NeedsRehash(hash string) bool {
	c, err := bcrypt.Cost([]byte(hash))
	return err == nil && c != h.cost
}

// dummy is a hash at cost c, made once.
func (h *Hasher) dummy(c int) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.dummies[c]
	if !ok {
		var err error
		if d, err = bcrypt.GenerateFromPassword([]byte("a password nobody has, to spend time on"), c); err != nil {
			panic(fmt.Sprintf("bcrypt: dummy hash at cost %d: %v", c, err)) // c is a valid cost: cannot happen
		}
		h.dummies[c] = d
	}
	return d
}
