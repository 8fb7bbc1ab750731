package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

var (
	_ ports.ProcessedEvents       = (*Store)(nil)
	_ ports.SaleStatsRepository   = (*Store)(nil)
	_ ports.SaleCounterRepository = (*Store)(nil)
)

// EventProcessed implements ports.ProcessedEvents.
func (s *Store) EventProcessed(ctx context.Context, consumer string, id uuid.UUID) (bool, error) {
	done, err := s.q.EventProcessed(ctx, sqlcdb.EventProcessedParams{Consumer: consumer, EventID: id})
	if err != nil {
		return false, classify("event processed", err)
	}
	return done, nil
}

// MarkEventProcessed implements ports.ProcessedEvents.
func (s *Store) MarkEventProcessed(ctx context.Context, consumer string, id uuid.UUID) error {
	if _, err := s.q.InsertProcessedEvent(ctx, sqlcdb.InsertProcessedEventParams{Consumer: consumer, EventID: id}); err != nil {
		return classify("mark event processed", err)
	}
	return nil
}

// applyOnce runs apply in the transaction that records the event as processed by consumer;
// an event seen before changes nothing.
func (s *Store) applyOnce(ctx context.Context, consumer string, eventID uuid.UUID, apply func(q *sqlcdb.Queries) error) (bool, error) {
	var applied bool
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		n, err := q.InsertProcessedEvent(ctx, sqlcdb.InsertProcessedEventParams{Consumer: consumer, EventID: eventID})
		if err != nil || n == 0 {
			return err
		}
		applied = true
		return apply(q)
	})
	if err != nil {
		return false, classify(fmt.Sprintf("apply event %s for %s", eventID, consumer), err)
	}
	return applied, nil
}

// AddOrderToStats implements ports.SaleStatsRepository.
func (s *Store) AddOrderToStats(ctx context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	return s.applyOnce(ctx, consumer, e.EventID, func(q *sqlcdb.Queries) error {
		return q.AddSaleStats(ctx, sqlcdb.AddSaleStatsParams{
			SaleID: e.SaleID, TenantID: e.TenantID, Units: int32(e.Quantity), RevenueCents: e.AmountCents,
			Currency: e.Currency, OrderedAt: e.OrderedAt,
		})
	})
}

// SaleStats implements ports.SaleStatsRepository.
func (s *Store) SaleStats(ctx context.Context, tenantID, saleID uuid.UUID) (domain.SaleStats, error) {
	r, err := s.q.SaleStats(ctx, sqlcdb.SaleStatsParams{TenantID: tenantID, SaleID: saleID})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.SaleStats{SaleID: saleID}, nil
	}
	if err != nil {
		return domain.SaleStats{}, classify("sale stats", err)
	}
	first, last := r.FirstOrderAt.UTC(), r.LastOrderAt.UTC()
	return domain.SaleStats{SaleID: saleID, Orders: int(r.Orders), Units: int(r.Units), RevenueCents: r.RevenueCents,
		Currency: r.Currency, FirstOrderAt: &first, LastOrderAt: &last}, nil
}

// AddSoldUnits implements ports.SaleCounterRepository.
func (s *Store) AddSoldUnits(ctx context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	return s.applyOnce(ctx, consumer, e.EventID, func(q *sqlcdb.Queries) error {
		_, err := q.AddSaleCounter(ctx, sqlcdb.AddSaleCounterParams{SaleID: e.SaleID, TenantID: e.TenantID, Sold: int32(e.Quantity)})
		return err
	})
}

// SoldCounter implements ports.SaleCounterRepository.
func (s *Store) SoldCounter(ctx context.Context, tenantID, saleID uuid.UUID) (int, bool, error) {
	r, err := s.q.SaleCounter(ctx, sqlcdb.SaleCounterParams{TenantID: tenantID, SaleID: saleID})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, classify("sale counter", err)
	}
	return int(r.Sold), true, nil
}

// RecordDrift implements ports.SaleCounterRepository.
func (s *Store) RecordDrift(ctx context.Context, tenantID, saleID uuid.UUID, drift int) error {
	return classify("record drift", s.q.RecordSaleDrift(ctx, sqlcdb.RecordSaleDriftParams{TenantID: tenantID, SaleID: saleID, Drift: int32(drift)}))
}
