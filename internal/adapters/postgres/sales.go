package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// CreateSale implements ports.SaleRepository.
func (s *Store) CreateSale(ctx context.Context, sale domain.Sale) error {
	err := s.q.InsertSale(ctx, sqlcdb.InsertSaleParams{
		ID: sale.ID, TenantID: sale.TenantID, Name: sale.Name, PriceCents: sale.PriceCents,
		Currency: sale.Currency, TotalStock: int32(sale.TotalStock), PerUserLimit: int32(sale.PerUserLimit),
		StartsAt: sale.StartsAt, EndsAt: sale.EndsAt, CreatedAt: sale.CreatedAt, UpdatedAt: sale.UpdatedAt,
		Shards:      int16(sale.ShardCount()),
		RoomEnabled: sale.WaitingRoom.Enabled, RoomAdmitPerSecond: int32(sale.WaitingRoom.AdmitPerSecond),
		RoomAdmissionTtlSeconds: int32(sale.WaitingRoom.AdmissionTTL / time.Second), RoomAutoRate: sale.WaitingRoom.AutoRate,
	})
	if err != nil {
		return classify("insert sale", err)
	}
	return nil
}

// Sale implements ports.SaleRepository.
func (s *Store) Sale(ctx context.Context, tenantID, id uuid.UUID) (domain.Sale, error) {
	row, err := s.q.SaleByID(ctx, sqlcdb.SaleByIDParams{TenantID: tenantID, ID: id})
	return toDomainSale(row, err)
}

// ListSales implements ports.SaleRepository.
func (s *Store) ListSales(ctx context.Context, tenantID uuid.UUID, f ports.SaleFilter) ([]domain.Sale, error) {
	var (
		rows []sqlcdb.Sale
		err  error
	)
	limit := int32(f.Limit)
	switch {
	case f.Any:
		rows, err = s.q.ListSales(ctx, sqlcdb.ListSalesParams{TenantID: tenantID, Limit: limit})
	case f.EndedOnly:
		rows, err = s.q.ListEndedSales(ctx, sqlcdb.ListEndedSalesParams{TenantID: tenantID, Limit: limit})
	default:
		rows, err = s.q.ListActiveSales(ctx, sqlcdb.ListActiveSalesParams{TenantID: tenantID, Limit: limit})
	}
	if err != nil {
		return nil, classify("list sales", err)
	}
	sales := make([]domain.Sale, len(rows))
	for i, r := range rows {
		sales[i], _ = toDomainSale(r, nil)
	}
	return sales, nil
}

// UpdateSale implements ports.SaleRepository: the row stays locked while update runs.
func (s *Store) UpdateSale(ctx context.Context, tenantID, id uuid.UUID,
	update func(ctx context.Context, s domain.Sale) (domain.Sale, error)) (domain.Sale, error) {
	var saved domain.Sale
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		current, err := toDomainSale(q.SaleByIDForUpdate(ctx, sqlcdb.SaleByIDForUpdateParams{TenantID: tenantID, ID: id}))
		if err != nil {
			return err
		}
		next, err := update(ctx, current)
		if err != nil {
			return err
		}
		err = q.UpdateSale(ctx, sqlcdb.UpdateSaleParams{
			TenantID: tenantID, ID: id, Name: next.Name, PriceCents: next.PriceCents, Currency: next.Currency,
			TotalStock: int32(next.TotalStock), PerUserLimit: int32(next.PerUserLimit),
			StartsAt: next.StartsAt, EndsAt: next.EndsAt, UpdatedAt: next.UpdatedAt,
			RoomEnabled: next.WaitingRoom.Enabled, RoomAdmitPerSecond: int32(next.WaitingRoom.AdmitPerSecond),
			RoomAdmissionTtlSeconds: int32(next.WaitingRoom.AdmissionTTL / time.Second), RoomAutoRate: next.WaitingRoom.AutoRate,
		})
		if err != nil {
			return classify("update sale", err)
		}
		saved = next
		return nil
	})
	return saved, err
}

// LiveSales implements ports.SaleRepository.
func (s *Store) LiveSales(ctx context.Context, since time.Time) ([]ports.SaleRef, error) {
	rows, err := s.q.LiveSales(ctx, since)
	if err != nil {
		return nil, classify("live sales", err)
	}
	refs := make([]ports.SaleRef, len(rows))
	for i, r := range rows {
		refs[i] = ports.SaleRef{TenantID: r.TenantID, SaleID: r.ID}
	}
	return refs, nil
}

// TenantLiveSaleIDs implements ports.SaleRepository.
func (s *Store) TenantLiveSaleIDs(ctx context.Context, tenantID uuid.UUID, since time.Time) ([]uuid.UUID, error) {
	ids, err := s.q.TenantLiveSaleIDs(ctx, sqlcdb.TenantLiveSaleIDsParams{TenantID: tenantID, EndsAt: since})
	if err != nil {
		return nil, classify("tenant live sales", err)
	}
	return ids, nil
}

// CloseSales implements ports.SaleRepository.
func (s *Store) CloseSales(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.q.CloseSales(ctx, cutoff)
	return n, classify("close sales", err)
}

// SoldUnits implements ports.SaleRepository.
func (s *Store) SoldUnits(ctx context.Context, tenantID, saleID uuid.UUID) (int, error) {
	n, err := s.q.SoldUnits(ctx, sqlcdb.SoldUnitsParams{TenantID: tenantID, SaleID: saleID})
	if err != nil {
		return 0, classify("sold units", err)
	}
	return int(n), nil
}

func toDomainSale(r sqlcdb.Sale, err error) (domain.Sale, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Sale{}, domain.ErrSaleNotFound
	}
	if err != nil {
		return domain.Sale{}, classify("read sale", err)
	}
	return domain.Sale{
		ID: r.ID, TenantID: r.TenantID, Name: r.Name, PriceCents: r.PriceCents, Currency: r.Currency,
		TotalStock: int(r.TotalStock), PerUserLimit: int(r.PerUserLimit),
		StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		Shards: int(r.Shards),
		WaitingRoom: domain.WaitingRoom{Enabled: r.RoomEnabled, AdmitPerSecond: int(r.RoomAdmitPerSecond),
			AdmissionTTL: time.Duration(r.RoomAdmissionTtlSeconds) * time.Second, AutoRate: r.RoomAutoRate},
	}, nil
}

// LiveWaitingRoomSales implements ports.WaitingRoomSales.
func (s *Store) LiveWaitingRoomSales(ctx context.Context, since time.Time) ([]domain.Sale, error) {
	rows, err := s.q.LiveWaitingRoomSales(ctx, since)
	if err != nil {
		return nil, classify("live waiting room sales", err)
	}
	sales := make([]domain.Sale, len(rows))
	for i, r := range rows {
		sales[i], _ = toDomainSale(r, nil)
	}
	return sales, nil
}

var _ ports.WaitingRoomSales = (*Store)(nil)

// RecordAdmissions implements ports.RoomAdmissionRecords.
func (s *Store) RecordAdmissions(ctx context.Context, sale domain.Sale, admitted []domain.Admitted) error {
	if len(admitted) == 0 {
		return nil
	}
	users, untils := make([]uuid.UUID, len(admitted)), make([]time.Time, len(admitted))
	for i, a := range admitted {
		users[i], untils[i] = a.UserID, a.Until
	}
	err := s.q.RecordRoomAdmissions(ctx, sqlcdb.RecordRoomAdmissionsParams{SaleID: sale.ID, TenantID: sale.TenantID, UserIds: users, Untils: untils})
	return classify("record room admissions", err)
}

// Admissions implements ports.RoomAdmissionRecords.
func (s *Store) Admissions(ctx context.Context, tenantID, saleID uuid.UUID) ([]domain.Admitted, error) {
	rows, err := s.q.RoomAdmissions(ctx, sqlcdb.RoomAdmissionsParams{TenantID: tenantID, SaleID: saleID})
	if err != nil {
		return nil, classify("room admissions", err)
	}
	out := make([]domain.Admitted, len(rows))
	for i, r := range rows {
		out[i] = domain.Admitted{UserID: r.UserID, Until: r.AdmittedUntil.UTC()}
	}
	return out, nil
}

var _ ports.RoomAdmissionRecords = (*Store)(nil)
