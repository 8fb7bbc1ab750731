package memory

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// saleRow is a sale and its status column: closed once it ended and its orders are settled.
type saleRow struct {
	sale   domain.Sale
	closed bool
}

// checkSale is what the sales table's checks refuse.
func checkSale(sl domain.Sale) error {
	if err := sl.Validate(); err != nil {
		return refused("sale %s: %v", sl.ID, err)
	}
	if !currencyPattern.MatchString(sl.Currency) {
		return refused("sale %s: currency %q", sl.ID, sl.Currency)
	}
	return nil
}

func normalizeSale(sl domain.Sale) domain.Sale {
	sl.StartsAt, sl.EndsAt = pgTime(sl.StartsAt), pgTime(sl.EndsAt)
	sl.CreatedAt, sl.UpdatedAt = pgTime(sl.CreatedAt), pgTime(sl.UpdatedAt)
	return sl
}

// CreateSale implements ports.SaleRepository.
func (s *Store) CreateSale(_ context.Context, sl domain.Sale) error {
	if err := checkSale(sl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.sales[sl.ID]; taken {
		return refused("insert sale: id %s taken", sl.ID)
	}
	if !s.tenantIDs[sl.TenantID] {
		return refused("insert sale: no tenant %s", sl.TenantID)
	}
	s.sales[sl.ID] = &saleRow{sale: normalizeSale(sl)}
	return nil
}

// Sale implements ports.SaleRepository.
func (s *Store) Sale(_ context.Context, tenantID, id uuid.UUID) (domain.Sale, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sale(tenantID, id)
}

func (s *Store) sale(tenantID, id uuid.UUID) (domain.Sale, error) {
	if row, ok := s.sales[id]; ok && row.sale.TenantID == tenantID {
		return row.sale, nil
	}
	return domain.Sale{}, domain.ErrSaleNotFound
}

// ListSales implements ports.SaleRepository, as the three queries do: sales not ended and not
// closed by their start, latest first; ended ones by their end, latest first; or all of them,
// newest first.
func (s *Store) ListSales(_ context.Context, tenantID uuid.UUID, f ports.SaleFilter) ([]domain.Sale, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	var out []domain.Sale
	for _, row := range s.sales {
		sl := row.sale
		ended := !sl.EndsAt.After(now)
		if sl.TenantID == tenantID && (f.Any || (f.EndedOnly && ended) || (!f.EndedOnly && !ended && !row.closed)) {
			out = append(out, sl)
		}
	}
	by := func(sl domain.Sale) time.Time { return sl.StartsAt }
	switch {
	case f.Any:
		by = func(sl domain.Sale) time.Time { return sl.CreatedAt }
	case f.EndedOnly:
		by = func(sl domain.Sale) time.Time { return sl.EndsAt }
	}
	slices.SortFunc(out, func(a, b domain.Sale) int {
		if c := by(b).Compare(by(a)); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})
	return out[:min(len(out), max(f.Limit, 0))], nil
}

// UpdateSale implements ports.SaleRepository: the sale's row lock is held while update runs,
// and only what the UPDATE statement sets is stored. A sale changed to end in the future is
// open again.
func (s *Store) UpdateSale(ctx context.Context, tenantID, id uuid.UUID,
	update func(ctx context.Context, s domain.Sale) (domain.Sale, error)) (domain.Sale, error) {
	s.mu.Lock()
	if _, err := s.sale(tenantID, id); err != nil {
		s.mu.Unlock()
		return domain.Sale{}, err
	}
	lock, ok := s.rowLocks[id]
	if !ok {
		lock = &sync.Mutex{}
		s.rowLocks[id] = lock
	}
	s.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	current, err := s.Sale(ctx, tenantID, id)
	if err != nil {
		return domain.Sale{}, err
	}
	next, err := update(ctx, current)
	if err != nil {
		return domain.Sale{}, err
	}
	stored := current
	stored.Name, stored.PriceCents, stored.Currency = next.Name, next.PriceCents, next.Currency
	stored.TotalStock, stored.PerUserLimit = next.TotalStock, next.PerUserLimit
	stored.StartsAt, stored.EndsAt, stored.UpdatedAt = next.StartsAt, next.EndsAt, next.UpdatedAt
	stored.WaitingRoom = next.WaitingRoom
	if err := checkSale(stored); err != nil {
		return domain.Sale{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	row := s.sales[id]
	row.sale = normalizeSale(stored)
	if row.sale.EndsAt.After(s.clock()) {
		row.closed = false
	}
	return next, nil
}

// live reports whether the sale may still hold reservations: open, or ended after since.
func (row *saleRow) live(since time.Time) bool { return !row.closed || row.sale.EndsAt.After(since) }

// LiveSales implements ports.SaleRepository.
func (s *Store) LiveSales(_ context.Context, since time.Time) ([]ports.SaleRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ports.SaleRef
	for _, row := range s.sales {
		if row.live(since) {
			out = append(out, ports.SaleRef{TenantID: row.sale.TenantID, SaleID: row.sale.ID})
		}
	}
	return out, nil
}

// TenantLiveSaleIDs implements ports.SaleRepository.
func (s *Store) TenantLiveSaleIDs(_ context.Context, tenantID uuid.UUID, since time.Time) ([]uuid.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uuid.UUID
	for _, row := range s.sales {
		if row.sale.TenantID == tenantID && row.live(since) {
			out = append(out, row.sale.ID)
		}
	}
	return out, nil
}

// CloseSales implements ports.SaleRepository.
func (s *Store) CloseSales(_ context.Context, cutoff time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, row := range s.sales {
		if !row.closed && row.sale.EndsAt.Before(cutoff) {
			row.closed = true
			n++
		}
	}
	return n, nil
}

// SoldUnits implements ports.SaleRepository: the units of the sale's confirmed orders.
func (s *Store) SoldUnits(_ context.Context, tenantID, saleID uuid.UUID) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.orders {
		if o.TenantID == tenantID && o.SaleID == saleID && o.Status == domain.OrderConfirmed {
			n += o.Quantity
		}
	}
	return n, nil
}

// SaleClosed reports whether CloseSales closed the sale (and no change reopened it): an
// inspection for tests.
func (s *Store) SaleClosed(id uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.sales[id]
	return ok && row.closed
}

// StoredSale reads a sale whatever its tenant: an inspection for tests.
func (s *Store) StoredSale(id uuid.UUID) (domain.Sale, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.sales[id]
	if !ok {
		return domain.Sale{}, false
	}
	return row.sale, true
}
