// Package jwt issues and verifies Flashsale's access tokens: HS256 JWTs (golang-jwt/v5) with a
// key id, so keys can rotate without logging anybody out.
package jwt

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Key is one signing secret and its id.
type Key struct {
	ID     string
	Secret []byte
}

// Config says how tokens are made and checked.
type Config struct {
	// Signing signs new tokens; Verifying are older keys still accepted until their tokens expire.
	Signing   Key
	Verifying []Key
	Issuer    string
	Audience  string
	TTL       time.Duration
	// Leeway tolerates clock skew between nodes.
	Leeway time.Duration
}

// Issuer implements ports.TokenIssuer.
type Issuer struct {
	cfg    Config
	keys   map[string][]byte
	parser *gojwt.Parser
	now    func() time.Time
	// verified holds the tokens that verified, until they expire: a shopper's every request
	// carries the same token, and checking its HMAC and claims again costs more than the rest of
	// the edge.
	verified *verifiedTokens
}

var _ ports.TokenIssuer = (*Issuer)(nil)

// NewIssuer checks the config and builds an issuer.
func NewIssuer(cfg Config) (*Issuer, error) {
	if len(cfg.Signing.Secret) < 32 {
		return nil, errors.New("jwt: signing secret must be at least 32 bytes")
	}
	keys := map[string][]byte{cfg.Signing.ID: cfg.Signing.Secret}
	for _, k := range cfg.Verifying {
		keys[k.ID] = k.Secret
	}
	return &Issuer{
		cfg:  cfg,
		keys: keys,
		parser: gojwt.NewParser(
			gojwt.WithValidMethods([]string{gojwt.SigningMethodHS256.Alg()}),
			gojwt.WithIssuer(cfg.Issuer),
			gojwt.WithAudience(cfg.Audience),
			gojwt.WithExpirationRequired(),
			gojwt.WithIssuedAt(),
			gojwt.WithLeeway(cfg.Leeway),
			// Base64url has one spelling per byte string only when the unused bits of the last
			// character must be zero; otherwise four strings carry the same signature.
			gojwt.WithStrictDecoding(),
		),
		now:      time.Now,
		verified: newVerifiedTokens(verifiedTokensPerGeneration),
	}, nil
}

// claims are the registered claims plus the tenant, role and email of the subject.
type claims struct {
	gojwt.RegisteredClaims
	TenantID  string `json:"tid"`
	SessionID string `json:"sid"`
	Role      string `json:"role"`
	Email     string `json:"email,omitempty"`
}

// Issue implements ports.TokenIssuer.
func (i *Issuer) Issue(p domain.Principal) (string, time.Duration, error) {
	now := i.now()
	c := claims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   p.UserID.String(),
			Audience:  gojwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: gojwt.NewNumericDate(now.Add(i.cfg.TTL)),
			NotBefore: gojwt.NewNumericDate(now),
			IssuedAt:  gojwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		TenantID:  p.TenantID.String(),
		SessionID: p.SessionID.String(),
		Role:      string(p.Role),
		Email:     p.Email,
	}
	t := gojwt.NewWithClaims(gojwt.SigningMethodHS256, c)
	t.Header["kid"] = i.cfg.Signing.ID
	signed, err := t.SignedString(i.cfg.Signing.Secret)
	if err != nil {
		return "", 0, fmt.Errorf("sign token: %w", err)
	}
	return signed, i.cfg.TTL, nil
}

// Verify implements ports.TokenIssuer. Every failure is the same domain.ErrUnauthenticated:
// a client learns nothing about why a forged token was refused.
func (i *Issuer) Verify(token string) (domain.Principal, error) {
	sum := sha256.Sum256([]byte(token))
	if p, ok := i.verified.get(sum, i.now()); ok {
		return p, nil
	}
	// Base64 decoding skips CR and LF even when strict: a token is base64url segments and dots.
	if strings.ContainsFunc(token, func(r rune) bool { return !isTokenChar(r) }) {
		return domain.Principal{}, domain.ErrUnauthenticated.WithDetail("invalid or expired access token")
	}
	var c claims
	_, err := i.parser.ParseWithClaims(token, &c, func(t *gojwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := i.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return key, nil
	})
	if err != nil {
		return domain.Principal{}, domain.ErrUnauthenticated.WithDetail("invalid or expired access token")
	}
	userID, err1 := uuid.Parse(c.Subject)
	tenantID, err2 := uuid.Parse(c.TenantID)
	sessionID, err3 := uuid.Parse(c.SessionID)
	role := domain.Role(c.Role)
	if err1 != nil || err2 != nil || err3 != nil || (role != domain.RoleShopper && role != domain.RoleAdmin) {
		return domain.Principal{}, domain.ErrUnauthenticated.WithDetail("invalid access token claims")
	}
	p := domain.Principal{UserID: userID, TenantID: tenantID, Role: role, Email: c.Email, SessionID: sessionID}
	// Accepted until its expiry, with the leeway the parser grants (nbf and iat, checked now,
	// only become truer).
	i.verified.put(sum, p, c.ExpiresAt.Add(i.cfg.Leeway))
	return p, nil
}

func isTokenChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}
