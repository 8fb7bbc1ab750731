package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
)

// EnsureTenant implements ports.TenantRepository.
func (s *Store) EnsureTenant(ctx context.Context, slug, name string) (domain.Tenant, error) {
	err := s.q.InsertTenantIfAbsent(ctx, sqlcdb.InsertTenantIfAbsentParams{ID: uuid.Must(uuid.NewV7()), Slug: slug, Name: name})
	if err != nil {
		return domain.Tenant{}, classify("insert tenant", err)
	}
	return s.TenantBySlug(ctx, slug)
}

// TenantBySlug implements ports.TenantRepository.
func (s *Store) TenantBySlug(ctx context.Context, slug string) (domain.Tenant, error) {
	t, err := s.q.TenantBySlug(ctx, slug)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Tenant{}, domain.ErrTenantNotFound.WithDetail("no tenant " + slug)
	}
	if err != nil {
		return domain.Tenant{}, classify("tenant by slug", err)
	}
	return domain.Tenant{ID: t.ID, Slug: t.Slug, Name: t.Name, CreatedAt: t.CreatedAt}, nil
}
