package memory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// SaveOrder implements ports.OrderRepository as the upsert does: a new order is inserted; a
// confirmation of a failed order takes its status and confirmation time; anything else changes
// nothing. The events go into the outbox with the order, all or none, and only when the row was
// inserted or replaced.
func (s *Store) SaveOrder(_ context.Context, o domain.Order, events ...domain.Event) (bool, error) {
	if o.Quantity <= 0 || o.UnitPriceCents < 0 || o.AmountCents < 0 ||
		(o.Status != domain.OrderConfirmed && o.Status != domain.OrderFailed) {
		return false, refused("save order %s: quantity %d, status %q", o.ID, o.Quantity, o.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.orders[o.ID]
	replaces := exists && old.Status == domain.OrderFailed && o.Status == domain.OrderConfirmed
	if exists && !replaces {
		return false, nil
	}
	if !exists {
		if err := s.checkNewOrder(o); err != nil {
			return false, err
		}
	}
	if err := s.checkEvents(events); err != nil {
		return false, err
	}
	stored := o
	if replaces {
		stored = old
		stored.Status, stored.ConfirmedAt, stored.ReservationSeq = o.Status, o.ConfirmedAt, o.ReservationSeq
	}
	stored.CreatedAt, stored.ConfirmedAt = pgTime(stored.CreatedAt), pgTimePtr(stored.ConfirmedAt)
	s.orders[o.ID] = stored
	for _, e := range events {
		s.insertEvent(e)
	}
	return !exists, nil
}

// checkNewOrder is what the orders table's references and unique key refuse.
func (s *Store) checkNewOrder(o domain.Order) error {
	_, sale := s.sales[o.SaleID]
	_, user := s.users[o.UserID]
	if !s.tenantIDs[o.TenantID] || !sale || !user {
		return refused("save order %s: tenant, sale or user unknown", o.ID)
	}
	for _, other := range s.orders {
		if other.UserID == o.UserID && other.IdempotencyKey == o.IdempotencyKey {
			return refused("save order %s: idempotency key taken by another order", o.ID)
		}
	}
	return nil
}

// Order implements ports.OrderRepository.
func (s *Store) Order(_ context.Context, tenantID, id uuid.UUID) (domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok && o.TenantID == tenantID {
		return o, nil
	}
	return domain.Order{}, domain.ErrOrderNotFound
}

// newerFirst orders by (created_at, id) descending, the keyset of ListOrders.
func newerFirst(a, b domain.Order) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(b.ID[:], a.ID[:])
}

// ListOrders implements ports.OrderRepository.
func (s *Store) ListOrders(_ context.Context, tenantID, userID uuid.UUID, after *ports.OrderCursor, limit int) ([]domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Order
	for _, o := range s.orders {
		if o.TenantID == tenantID && o.UserID == userID &&
			(after == nil || newerFirst(o, domain.Order{CreatedAt: after.CreatedAt, ID: after.ID}) > 0) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, newerFirst)
	return out[:min(len(out), max(limit, 0))], nil
}

// ConfirmedOrderIDs implements ports.OrderRepository.
func (s *Store) ConfirmedOrderIDs(_ context.Context, tenantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		if o, ok := s.orders[id]; ok && o.TenantID == tenantID && o.Status == domain.OrderConfirmed {
			out[id] = true
		}
	}
	return out, nil
}

// ReservationHighWaters implements ports.OrderRepository.
func (s *Store) ReservationHighWaters(_ context.Context, tenantID, saleID uuid.UUID, shards int) ([]ports.HighWater, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	shards = max(shards, 1)
	high := make([]ports.HighWater, shards)
	for _, o := range s.orders {
		k := o.ReservationSeq % int64(shards)
		if o.TenantID == tenantID && o.SaleID == saleID && o.ReservationSeq > high[k].Seq {
			high[k] = ports.HighWater{Seq: o.ReservationSeq, OrderID: o.ID}
		}
	}
	high = slices.DeleteFunc(high, func(h ports.HighWater) bool { return h.Seq == 0 })
	slices.SortFunc(high, func(a, b ports.HighWater) int { return cmp.Compare(b.Seq, a.Seq) })
	return high, nil
}

// SaleOrders implements ports.OrderRepository: oldest first, then by id.
func (s *Store) SaleOrders(_ context.Context, tenantID, saleID uuid.UUID) ([]domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Order
	for _, o := range s.orders {
		if o.TenantID == tenantID && o.SaleID == saleID {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b domain.Order) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return slices.Compare(a.ID[:], b.ID[:])
	})
	return out, nil
}

// StoredOrder reads an order whatever its tenant: an inspection for tests.
func (s *Store) StoredOrder(id uuid.UUID) (domain.Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	return o, ok
}

// checkEvents is what the outbox table refuses: an event of an unknown tenant, a payload that
// is not JSON.
func (s *Store) checkEvents(events []domain.Event) error {
	for _, e := range events {
		if !s.tenantIDs[e.TenantID] || !json.Valid(e.Payload) {
			return refused("insert outbox event %s (%s): unknown tenant or a payload that is not JSON", e.ID, e.Type)
		}
	}
	return nil
}
