package app

import (
	"strings"

	"github.com/flashsale/flashsale/internal/domain"
)

// commonPasswords are the most used passwords of 10+ characters in public breach lists; a
// password policy that lets these through protects nobody.
var commonPasswords = map[string]bool{
	"1234567890": true, "0123456789": true, "1q2w3e4r5t": true, "qwertyuiop": true, "password12": true,
	"password123": true, "password1234": true, "iloveyou12": true, "qwerty1234": true, "1qaz2wsx3edc": true,
	"0987654321": true, "abcdefghij": true, "a1b2c3d4e5": true, "passw0rd123": true, "123456789a": true,
	"qwertyuiop123": true, "letmein123": true, "welcome123": true, "administrator": true, "changeme123": true,
}

// checkPassword applies the policy beyond the spec's length bounds (10 to 72 bytes): not a
// well-known password, not the email address, and not a run of a few repeated characters.
func checkPassword(password, email string) error {
	weak := func(why string) error { return domain.ErrWeakPassword.WithDetail("password " + why) }
	lower := strings.ToLower(password)
	local, _, _ := strings.Cut(domain.NormalizeEmail(email), "@")
	switch {
	case len(password) > 72:
		return domain.ErrInvalidRequest.WithDetail("password: at most 72 bytes")
	case len([]rune(password)) < 10:
		return weak("must be at least 10 characters")
	case commonPasswords[lower]:
		return weak("is one of the most common passwords")
	case len(local) >= 4 && strings.Contains(lower, local):
		return weak("must not contain the email address")
	}
	distinct := map[rune]bool{}
	for _, r := range password {
		distinct[r] = true
	}
	if len(distinct) < 5 {
		return weak("needs at least 5 different characters")
	}
	return nil
}
