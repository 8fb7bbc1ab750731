package domain

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// Role decides what a user may do.
type Role string

const (
	RoleShopper Role = "shopper"
	RoleAdmin   Role = "admin"
)

// User is an account of one tenant.
type User struct {
	ID           uuid.UUID
	TenantID     uuid.UUID
	Email        string
	PasswordHash string
	Role         Role
	CreatedAt    time.Time
}

// NormalizeEmail gives the one spelling of an address that uniqueness and lookups use.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Principal is the authenticated caller, as carried by an access token.
type Principal struct {
	UserID   uuid.UUID
	TenantID uuid.UUID
	Email    string
	Role     Role
	// SessionID is the login session (refresh-token family) the token belongs to; revoking the
	// session revokes the token.
	SessionID uuid.UUID
}

// Session is one login: a family of rotating refresh tokens and the access tokens they issue.
type Session struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	UserID   uuid.UUID
}

// IsAdmin reports whether the caller administers its tenant.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }
