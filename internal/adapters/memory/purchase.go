package memory

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Purchase implements ports.PurchaseStore: claim and reserve under one lock, so a purchase whose
// key is in use never takes stock.
func (s *Inventory) Purchase(_ context.Context, p ports.Purchase) (ports.PurchaseOutcome, error) {
	if !p.Gate.IsZero() {
		return ports.PurchaseOutcome{}, errors.New("purchase: the edge's checks are not taken here (GateInPurchase)")
	}
	if p.Admission {
		return ports.PurchaseOutcome{}, errors.New("purchase: admissions are not spent here (AdmissionInPurchase)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if rec, ok := s.idem[p.Scope]; ok && now.Before(rec.expires) {
		c := copyRecord(rec.rec)
		return ports.PurchaseOutcome{Known: &c}, nil
	}
	res, err := s.reserve(p.Reservation)
	if errors.Is(err, domain.ErrSaleNotFound) {
		return ports.PurchaseOutcome{}, err
	}
	s.idem[p.Scope] = idemRecord{rec: ports.IdempotencyRecord{Fingerprint: p.Fingerprint}, expires: now.Add(p.Lease)}
	return ports.PurchaseOutcome{Reserved: res}, err
}

// Complete implements ports.PurchaseStore.
func (s *Inventory) Complete(_ context.Context, sc ports.IdempotencyScope, rec ports.IdempotencyRecord, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec = copyRecord(rec)
	rec.Done = true
	s.idem[sc] = idemRecord{rec: rec, expires: s.now().Add(ttl)}
	return nil
}

// Forget implements ports.PurchaseStore.
func (s *Inventory) Forget(_ context.Context, sc ports.IdempotencyScope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.idem, sc)
	return nil
}

// GateInPurchase implements ports.PurchaseStore: the edge checks sessions and rate limits.
func (s *Inventory) GateInPurchase() bool { return false }

// AdmissionInPurchase implements ports.PurchaseStore: the waiting room spends admissions first.
func (s *Inventory) AdmissionInPurchase() bool { return false }

// Lookup implements ports.PurchaseStore.
func (s *Inventory) Lookup(_ context.Context, sc ports.IdempotencyScope, _, session uuid.UUID) (ports.IdempotencyRecord, bool, error) {
	if session != uuid.Nil {
		return ports.IdempotencyRecord{}, false, errors.New("look up idempotency key: sessions are not checked here (GateInPurchase)")
	}
	rec, _, ok := s.KeyRecord(sc)
	return rec, ok, nil
}

// KeyRecord is the live record of a key: an inspection for tests.
func (s *Inventory) KeyRecord(sc ports.IdempotencyScope) (ports.IdempotencyRecord, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.idem[sc]
	if !ok || !s.now().Before(rec.expires) {
		return ports.IdempotencyRecord{}, time.Time{}, false
	}
	return copyRecord(rec.rec), rec.expires, true
}

func copyRecord(r ports.IdempotencyRecord) ports.IdempotencyRecord {
	if r.Outcome.Order != nil {
		o := *r.Outcome.Order
		r.Outcome.Order = &o
	}
	return r
}
