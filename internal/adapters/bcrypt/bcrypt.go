// Package bcrypt hashes passwords with bcrypt at a configurable cost.
package bcrypt

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/flashsale/flashsale/internal/ports"
)

// Hasher implements ports.PasswordHasher.
type Hasher struct{ cost int }

var _ ports.PasswordHasher = Hasher{}

// NewHasher uses cost (bcrypt.MinCost..MaxCost; 12 is a sound production value).
func NewHasher(cost int) (Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return Hasher{}, fmt.Errorf("bcrypt: cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return Hasher{cost: cost}, nil
}

// Hash implements ports.PasswordHasher.
func (h Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	return string(b), err
}

// Verify implements ports.PasswordHasher.
func (h Hasher) Verify(hash, password string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, err
	}
}
