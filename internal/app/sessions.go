package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// TokenPair is what a login or a refresh hands out.
type TokenPair struct {
	AccessToken  string
	AccessTTL    time.Duration
	RefreshToken string
	RefreshTTL   time.Duration
}

// SessionIssuer opens sessions and mints their tokens. A refresh token is
// "<session id>.<256 random bits>"; only a hash of the random part is stored.
type SessionIssuer struct {
	Sessions   ports.SessionStore
	Tokens     ports.TokenIssuer
	RefreshTTL time.Duration
}

// Open starts a session for u and returns its first token pair.
func (s SessionIssuer) Open(ctx context.Context, u domain.User) (TokenPair, error) {
	sess := domain.Session{ID: uuid.Must(uuid.NewV7()), TenantID: u.TenantID, UserID: u.ID}
	secret, hash := newRefreshSecret()
	if err := s.Sessions.CreateSession(ctx, sess, hash, s.RefreshTTL); err != nil {
		return TokenPair{}, fmt.Errorf("open session: %w", err)
	}
	return s.pair(u, sess.ID, secret)
}

func (s SessionIssuer) pair(u domain.User, sessionID uuid.UUID, secret string) (TokenPair, error) {
	access, ttl, err := s.Tokens.Issue(domain.Principal{
		UserID: u.ID, TenantID: u.TenantID, Email: u.Email, Role: u.Role, SessionID: sessionID,
	})
	if err != nil {
		return TokenPair{}, fmt.Errorf("issue access token: %w", err)
	}
	return TokenPair{AccessToken: access, AccessTTL: ttl, RefreshToken: sessionID.String() + "." + secret, RefreshTTL: s.RefreshTTL}, nil
}

func newRefreshSecret() (secret, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// RefreshHandler rotates a refresh token.
type RefreshHandler struct {
	Issuer SessionIssuer
	Users  ports.UserRepository
}

// Handle exchanges a refresh token for a new pair; the old one stops working at once. A replay of
// an already rotated token revokes the whole session.
func (h RefreshHandler) Handle(ctx context.Context, refreshToken string) (TokenPair, error) {
	invalid := domain.ErrInvalidRefreshToken.WithDetail("the refresh token is unknown, expired or revoked")
	sid, secret, ok := strings.Cut(refreshToken, ".")
	sessionID, err := uuid.Parse(sid)
	if !ok || err != nil || secret == "" {
		return TokenPair{}, invalid
	}
	next, nextHash := newRefreshSecret()
	sess, err := h.Issuer.Sessions.RotateRefresh(ctx, sessionID, hashSecret(secret), nextHash, h.Issuer.RefreshTTL)
	if err != nil {
		return TokenPair{}, err
	}
	// The role is read afresh: a demoted admin's next access token says so.
	u, err := h.Users.UserByID(ctx, sess.TenantID, sess.UserID)
	if errors.Is(err, domain.ErrUserNotFound) {
		_ = h.Issuer.Sessions.RevokeSession(ctx, sessionID)
		return TokenPair{}, invalid
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}
	return h.Issuer.pair(u, sessionID, next)
}

// LogoutHandler ends the caller's session.
type LogoutHandler struct {
	Sessions ports.SessionStore
}

// Handle revokes p's session: its refresh token and every access token it issued.
func (h LogoutHandler) Handle(ctx context.Context, p domain.Principal) error {
	return h.Sessions.RevokeSession(ctx, p.SessionID)
}

// LogoutAllHandler ends every session of the caller.
type LogoutAllHandler struct {
	Sessions ports.SessionStore
}

// Handle revokes all of p's sessions, on every device.
func (h LogoutAllHandler) Handle(ctx context.Context, p domain.Principal) error {
	_, err := h.Sessions.RevokeUserSessions(ctx, p.TenantID, p.UserID)
	return err
}
