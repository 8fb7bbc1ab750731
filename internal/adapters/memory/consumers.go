package memory

import (
	"context"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

type consumerEvent struct {
	consumer string
	event    uuid.UUID
}

// statsRow is a sale's analytics figures.
type statsRow struct {
	tenantID uuid.UUID
	stats    domain.SaleStats
}

// counterRow is PostgreSQL's sold counter of a sale and the last drift recorded against it.
type counterRow struct {
	tenantID uuid.UUID
	sold     int
	drift    int
}

// EventProcessed implements ports.ProcessedEvents.
func (s *Store) EventProcessed(_ context.Context, consumer string, id uuid.UUID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processed[consumerEvent{consumer, id}], nil
}

// MarkEventProcessed implements ports.ProcessedEvents.
func (s *Store) MarkEventProcessed(_ context.Context, consumer string, id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processed[consumerEvent{consumer, id}] = true
	return nil
}

// applyOnce records the event as processed by consumer and applies it, or does nothing for an
// event seen before. An event of an unknown sale or tenant is refused and not recorded.
func (s *Store) applyOnce(consumer string, e domain.OrderConfirmedV1, apply func()) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := consumerEvent{consumer, e.EventID}
	if s.processed[k] {
		return false, nil
	}
	if _, ok := s.sales[e.SaleID]; !ok || !s.tenantIDs[e.TenantID] {
		return false, refused("apply event %s for %s: sale %s or tenant %s unknown", e.EventID, consumer, e.SaleID, e.TenantID)
	}
	s.processed[k] = true
	apply()
	return true, nil
}

// AddOrderToStats implements ports.SaleStatsRepository.
func (s *Store) AddOrderToStats(_ context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	return s.applyOnce(consumer, e, func() {
		at := pgTime(e.OrderedAt)
		row, ok := s.stats[e.SaleID]
		if !ok {
			row = statsRow{tenantID: e.TenantID, stats: domain.SaleStats{SaleID: e.SaleID, Currency: e.Currency,
				FirstOrderAt: &at, LastOrderAt: &at}}
		}
		st := &row.stats
		st.Orders++
		st.Units += e.Quantity
		st.RevenueCents += e.AmountCents
		if at.Before(*st.FirstOrderAt) {
			st.FirstOrderAt = &at
		}
		if at.After(*st.LastOrderAt) {
			st.LastOrderAt = &at
		}
		s.stats[e.SaleID] = row
	})
}

// SaleStats implements ports.SaleStatsRepository.
func (s *Store) SaleStats(_ context.Context, tenantID, saleID uuid.UUID) (domain.SaleStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.stats[saleID]
	if !ok || row.tenantID != tenantID {
		return domain.SaleStats{SaleID: saleID}, nil
	}
	st := row.stats
	first, last := *st.FirstOrderAt, *st.LastOrderAt
	st.FirstOrderAt, st.LastOrderAt = &first, &last
	return st, nil
}

// AddSoldUnits implements ports.SaleCounterRepository.
func (s *Store) AddSoldUnits(_ context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	return s.applyOnce(consumer, e, func() {
		row, ok := s.counters[e.SaleID]
		if !ok {
			row = counterRow{tenantID: e.TenantID}
		}
		row.sold += e.Quantity
		s.counters[e.SaleID] = row
	})
}

// SoldCounter implements ports.SaleCounterRepository.
func (s *Store) SoldCounter(_ context.Context, tenantID, saleID uuid.UUID) (int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.counters[saleID]
	if !ok || row.tenantID != tenantID {
		return 0, false, nil
	}
	return row.sold, true, nil
}

// RecordDrift implements ports.SaleCounterRepository: it changes an existing counter only.
func (s *Store) RecordDrift(_ context.Context, tenantID, saleID uuid.UUID, drift int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if row, ok := s.counters[saleID]; ok && row.tenantID == tenantID {
		row.drift = drift
		s.counters[saleID] = row
	}
	return nil
}

// Drift is the last drift recorded for a sale; ok is false without a counter: an inspection
// for tests.
func (s *Store) Drift(tenantID, saleID uuid.UUID) (drift int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.counters[saleID]
	return row.drift, ok && row.tenantID == tenantID
}

// SetSoldCounter sets a sale's counter (creating it) as an UPDATE by hand would: test set-up
// for a counter that is ahead of or behind the orders.
func (s *Store) SetSoldCounter(tenantID, saleID uuid.UUID, sold int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row := s.counters[saleID]
	row.tenantID, row.sold = tenantID, sold
	s.counters[saleID] = row
}
