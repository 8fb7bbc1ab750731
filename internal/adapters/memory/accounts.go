package memory

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// EnsureTenant implements ports.TenantRepository.
func (s *Store) EnsureTenant(_ context.Context, slug, name string) (domain.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tenants[slug]; ok {
		return t, nil
	}
	if !slugPattern.MatchString(slug) {
		return domain.Tenant{}, refused("insert tenant: slug %q", slug)
	}
	t := domain.Tenant{ID: uuid.Must(uuid.NewV7()), Slug: slug, Name: name, CreatedAt: s.clock()}
	s.tenants[slug], s.tenantIDs[t.ID] = t, true
	return t, nil
}

// TenantBySlug implements ports.TenantRepository.
func (s *Store) TenantBySlug(_ context.Context, slug string) (domain.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tenants[slug]; ok {
		return t, nil
	}
	return domain.Tenant{}, domain.ErrTenantNotFound.WithDetail("no tenant " + slug)
}

// CreateUser implements ports.UserRepository.
func (s *Store) CreateUser(_ context.Context, u domain.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Email != strings.ToLower(u.Email) || (u.Role != domain.RoleShopper && u.Role != domain.RoleAdmin) {
		return refused("insert user: email %q, role %q", u.Email, u.Role)
	}
	if _, taken := s.users[u.ID]; taken || s.userByEmail(u.TenantID, u.Email) != nil {
		return domain.ErrEmailTaken.WithDetail("an account with this email already exists")
	}
	if !s.tenantIDs[u.TenantID] {
		return refused("insert user: no tenant %s", u.TenantID)
	}
	u.CreatedAt = pgTime(u.CreatedAt)
	s.users[u.ID] = u
	return nil
}

func (s *Store) userByEmail(tenantID uuid.UUID, email string) *domain.User {
	for _, u := range s.users {
		if u.TenantID == tenantID && u.Email == email {
			return &u
		}
	}
	return nil
}

// UserByEmail implements ports.UserRepository.
func (s *Store) UserByEmail(_ context.Context, tenantID uuid.UUID, email string) (domain.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userByEmail(tenantID, email); u != nil {
		return *u, nil
	}
	return domain.User{}, domain.ErrUserNotFound
}

// UserByID implements ports.UserRepository.
func (s *Store) UserByID(_ context.Context, tenantID, id uuid.UUID) (domain.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[id]; ok && u.TenantID == tenantID {
		return u, nil
	}
	return domain.User{}, domain.ErrUserNotFound
}

// ReplacePasswordHash implements ports.UserRepository.
func (s *Store) ReplacePasswordHash(_ context.Context, tenantID, id uuid.UUID, oldHash, newHash string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok || u.TenantID != tenantID || u.PasswordHash != oldHash {
		return false, nil
	}
	u.PasswordHash = newHash
	s.users[id] = u
	return true, nil
}

// Test set-up: changes no port makes, as an operator's SQL would.

// SetUserRole changes a user's role; ok is false if there is no such user.
func (s *Store) SetUserRole(id uuid.UUID, role domain.Role) (ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if ok {
		u.Role = role
		s.users[id] = u
	}
	return ok
}

// DeleteUser removes a user.
func (s *Store) DeleteUser(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
}

// UserCount is how many users the store holds: an inspection for tests.
func (s *Store) UserCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users)
}
