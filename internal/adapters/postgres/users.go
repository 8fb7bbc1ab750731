package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
)

// CreateUser implements ports.UserRepository.
func (s *Store) CreateUser(ctx context.Context, u domain.User) error {
	err := s.q.InsertUser(ctx, sqlcdb.InsertUserParams{
		ID: u.ID, TenantID: u.TenantID, Email: u.Email, PasswordHash: u.PasswordHash,
		Role: string(u.Role), CreatedAt: u.CreatedAt,
	})
	if code, _ := pgCode(err); code == uniqueViolation {
		return domain.ErrEmailTaken.WithDetail("an account with this email already exists")
	}
	if err != nil {
		return classify("insert user", err)
	}
	return nil
}

// UserByEmail implements ports.UserRepository.
func (s *Store) UserByEmail(ctx context.Context, tenantID uuid.UUID, email string) (domain.User, error) {
	u, err := s.q.UserByEmail(ctx, sqlcdb.UserByEmailParams{TenantID: tenantID, Email: email})
	return toDomainUser(u, err)
}

// UserByID implements ports.UserRepository.
func (s *Store) UserByID(ctx context.Context, tenantID, id uuid.UUID) (domain.User, error) {
	u, err := s.q.UserByID(ctx, sqlcdb.UserByIDParams{TenantID: tenantID, ID: id})
	return toDomainUser(u, err)
}

// ReplacePasswordHash implements ports.UserRepository.
func (s *Store) ReplacePasswordHash(ctx context.Context, tenantID, id uuid.UUID, oldHash, newHash string) (bool, error) {
	n, err := s.q.ReplacePasswordHash(ctx, sqlcdb.ReplacePasswordHashParams{
		TenantID: tenantID, ID: id, OldHash: oldHash, NewHash: newHash,
	})
	if err != nil {
		return false, classify("replace password hash", err)
	}
	return n == 1, nil
}

func toDomainUser(u sqlcdb.User, err error) (domain.User, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, domain.ErrUserNotFound
	}
	if err != nil {
		return domain.User{}, classify("read user", err)
	}
	return domain.User{
		ID: u.ID, TenantID: u.TenantID, Email: u.Email, PasswordHash: u.PasswordHash,
		Role: domain.Role(u.Role), CreatedAt: u.CreatedAt,
	}, nil
}
