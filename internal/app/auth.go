package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Register creates a shopper account in a tenant.
type Register struct {
	TenantSlug string
	Email      string
	Password   string
}

// RegisterHandler handles Register.
type RegisterHandler struct {
	Tenants *TenantResolver
	Users   ports.UserRepository
	Hasher  ports.PasswordHasher
	Now     func() time.Time
}

// Handle creates the account; the email must be free within the tenant.
func (h RegisterHandler) Handle(ctx context.Context, cmd Register) (domain.User, error) {
	if err := checkPassword(cmd.Password, cmd.Email); err != nil {
		return domain.User{}, err
	}
	tenant, err := h.Tenants.BySlug(ctx, cmd.TenantSlug)
	if err != nil {
		return domain.User{}, err
	}
	return createUser(ctx, h.Users, h.Hasher, h.Now(), tenant.ID, cmd.Email, cmd.Password, domain.RoleShopper)
}

func createUser(ctx context.Context, users ports.UserRepository, hasher ports.PasswordHasher, now time.Time,
	tenantID uuid.UUID, email, password string, role domain.Role) (domain.User, error) {
	hash, err := hasher.Hash(password)
	if err != nil {
		return domain.User{}, fmt.Errorf("hash password: %w", err)
	}
	u := domain.User{
		ID: uuid.Must(uuid.NewV7()), TenantID: tenantID, Email: domain.NormalizeEmail(email),
		PasswordHash: hash, Role: role, CreatedAt: now.UTC(),
	}
	if err := users.CreateUser(ctx, u); err != nil {
		return domain.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Login exchanges credentials for an access token.
type Login struct {
	TenantSlug string
	Email      string
	Password   string
}

// LoginHandler handles Login.
type LoginHandler struct {
	Tenants *TenantResolver
	Users   ports.UserRepository
	Hasher  ports.PasswordHasher
	Issuer  SessionIssuer
	Log     *slog.Logger

	dummyOnce sync.Once
	dummyHash string
}

// Handle checks the credentials. An unknown email costs the same hash comparison as a wrong
// password: one Verify, against a dummy hash made at today's cost (and Verify costs today's
// cost whatever the stored hash's, ports.PasswordHasher), so response times do not reveal which
// addresses have accounts. A hash made at another cost is replaced on the login that proves the
// password.
func (h *LoginHandler) Handle(ctx context.Context, cmd Login) (TokenPair, error) {
	tenant, err := h.Tenants.BySlug(ctx, cmd.TenantSlug)
	if err != nil {
		return TokenPair{}, err
	}
	u, err := h.Users.UserByEmail(ctx, tenant.ID, domain.NormalizeEmail(cmd.Email))
	switch {
	case errors.Is(err, domain.ErrUserNotFound):
		_, _ = h.Hasher.Verify(h.dummy(), cmd.Password)
		return TokenPair{}, domain.ErrInvalidCredentials
	case err != nil:
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	ok, err := h.Hasher.Verify(u.PasswordHash, cmd.Password)
	if err != nil {
		return TokenPair{}, fmt.Errorf("login: verify password: %w", err)
	}
	if !ok {
		return TokenPair{}, domain.ErrInvalidCredentials
	}
	if h.Hasher.NeedsRehash(u.PasswordHash) {
		h.rehash(ctx, u, cmd.Password)
	}
	return h.Issuer.Open(ctx, u)
}

// rehash replaces u's hash with one of today's cost. It does not fail the login, which is
// proven: the old hash keeps working and the next login tries again.
func (h *LoginHandler) rehash(ctx context.Context, u domain.User, password string) {
	hash, err := h.Hasher.Hash(password)
	if err == nil {
		_, err = h.Users.ReplacePasswordHash(ctx, u.TenantID, u.ID, u.PasswordHash, hash)
	}
	if err != nil {
		h.Log.WarnContext(ctx, "login: rehash password at today's cost", "user", u.ID, "err", err)
	}
}

func (h *LoginHandler) dummy() string {
	h.dummyOnce.Do(func() {
		h.dummyHash, _ = h.Hasher.Hash("not-a-real-password-just-for-timing")
	})
	return h.dummyHash
}

// MeHandler returns the caller's account.
type MeHandler struct {
	Users ports.UserRepository
}

// Handle reads the account of p.
func (h MeHandler) Handle(ctx context.Context, p domain.Principal) (domain.User, error) {
	return h.Users.UserByID(ctx, p.TenantID, p.UserID)
}

// TenantResolver finds tenants by slug, remembering them: tenants are created, never renamed.
type TenantResolver struct {
	Tenants ports.TenantRepository
	cache   sync.Map // slug -> domain.Tenant
}

// BySlug resolves a slug; an empty slug means the default tenant.
func (r *TenantResolver) BySlug(ctx context.Context, slug string) (domain.Tenant, error) {
	if slug == "" {
		slug = domain.DefaultTenantSlug
	}
	if t, ok := r.cache.Load(slug); ok {
		return t.(domain.Tenant), nil
	}
	t, err := r.Tenants.TenantBySlug(ctx, slug)
	if err != nil {
		return domain.Tenant{}, err
	}
	r.cache.Store(slug, t)
	return t, nil
}

// Bootstrap makes a fresh installation usable: the default tenant and its first admin.
type Bootstrap struct {
	AdminEmail    string
	AdminPassword string
}

// BootstrapHandler handles Bootstrap.
type BootstrapHandler struct {
	Tenants ports.TenantRepository
	Users   ports.UserRepository
	Hasher  ports.PasswordHasher
	Now     func() time.Time
}

// Handle creates what is missing and leaves what exists alone (an admin who changed the
// password keeps it).
func (h BootstrapHandler) Handle(ctx context.Context, cmd Bootstrap) (domain.Tenant, error) {
	tenant, err := h.Tenants.EnsureTenant(ctx, domain.DefaultTenantSlug, "Default merchant")
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("bootstrap: default tenant: %w", err)
	}
	if cmd.AdminEmail == "" {
		return tenant, nil
	}
	_, err = h.Users.UserByEmail(ctx, tenant.ID, domain.NormalizeEmail(cmd.AdminEmail))
	if !errors.Is(err, domain.ErrUserNotFound) {
		return tenant, err
	}
	_, err = createUser(ctx, h.Users, h.Hasher, h.Now(), tenant.ID, cmd.AdminEmail, cmd.AdminPassword, domain.RoleAdmin)
	if errors.Is(err, domain.ErrEmailTaken) { // another node won the race
		err = nil
	}
	return tenant, err
}
