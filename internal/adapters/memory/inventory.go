// Package memory holds in-memory implementations of ports, held to the same contract suites as
// the Redis and PostgreSQL adapters: the stand-ins the use-case tests run on, and a reference
// that reads like the rules. Inventory is the inventory and purchase store; Store is what
// PostgreSQL's Store is (tenants, users, sales, orders, the outbox, the consumers' records);
// Sessions and SaleCache are Redis's. Every store is safe for concurrent use; each operation is
// atomic under one mutex, as a Lua script or a transaction makes it in the real stores.
package memory

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

type saleKey struct{ tenant, sale uuid.UUID }

// sale is one sale's inventory: what reserve.lua keeps under a sale's keys.
type sale struct {
	total, remaining, sold, limit int
	starts, ends                  time.Time
	fence                         time.Time // no purchase before it (a restored inventory)
	price                         int64
	currency                      string
	buyers                        map[uuid.UUID]int                // units each buyer holds
	keys                          map[string]uuid.UUID             // "<user>:<idempotency key>" -> order id
	res                           map[uuid.UUID]domain.Reservation // order id -> reservation
	awaited                       map[uuid.UUID]time.Time          // pending order id -> since
	seq                           int64                            // the last reservation's number
	rolledBack                    bool                             // marked by RollBack until restored
}

// view is the inventory as ports.InventoryStore reads it.
func (inv *sale) view(tenantID, saleID uuid.UUID) domain.Inventory {
	return domain.Inventory{SaleID: saleID, TenantID: tenantID, Total: inv.total, Remaining: inv.remaining,
		Sold: inv.sold, Pending: inv.pendingUnits(), Seq: inv.seq, RolledBack: inv.rolledBack}
}

// Inventory implements ports.InventoryStore and ports.PurchaseStore in memory.
type Inventory struct {
	now func() time.Time

	mu    sync.Mutex
	sales map[saleKey]*sale
	idem  map[ports.IdempotencyScope]idemRecord
}

type idemRecord struct {
	rec     ports.IdempotencyRecord
	expires time.Time
}

var (
	_ ports.InventoryStore = (*Inventory)(nil)
	_ ports.PurchaseStore  = (*Inventory)(nil)
)

// NewInventory keeps time by now (time.Now if nil), at the millisecond like Redis' TIME.
func NewInventory(now func() time.Time) *Inventory {
	if now == nil {
		now = time.Now
	}
	return &Inventory{now: now, sales: map[saleKey]*sale{}, idem: map[ports.IdempotencyScope]idemRecord{}}
}

func (s *Inventory) clock() time.Time { return time.UnixMilli(s.now().UnixMilli()).UTC() }

// SyncSale implements ports.InventoryStore, as sync_sale.lua.
func (s *Inventory) SyncSale(_ context.Context, sl domain.Sale, soldHint int) (domain.Inventory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := saleKey{sl.TenantID, sl.ID}
	sold := soldHint
	inv, ok := s.sales[k]
	if ok {
		sold = inv.sold
	}
	if sl.TotalStock < sold {
		return domain.Inventory{}, domain.StockBelowSold(sl.TotalStock, sold)
	}
	if !ok {
		inv = &sale{buyers: map[uuid.UUID]int{}, keys: map[string]uuid.UUID{},
			res: map[uuid.UUID]domain.Reservation{}, awaited: map[uuid.UUID]time.Time{}}
		s.sales[k] = inv
	}
	inv.total, inv.remaining, inv.sold = sl.TotalStock, sl.TotalStock-sold, sold
	inv.limit, inv.starts, inv.ends = sl.PerUserLimit, sl.StartsAt.Truncate(time.Millisecond), sl.EndsAt.Truncate(time.Millisecond)
	inv.price, inv.currency = sl.PriceCents, sl.Currency
	return domain.Inventory{SaleID: sl.ID, TenantID: sl.TenantID, Total: inv.total, Remaining: inv.remaining, Sold: inv.sold}, nil
}

// Inventory implements ports.InventoryStore.
func (s *Inventory) Inventory(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Inventory, bool, error) {
	invs, err := s.Inventories(ctx, tenantID, []uuid.UUID{saleID})
	inv, ok := invs[saleID]
	return inv, ok, err
}

// Inventories implements ports.InventoryStore.
func (s *Inventory) Inventories(_ context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID) (map[uuid.UUID]domain.Inventory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uuid.UUID]domain.Inventory{}
	for _, id := range saleIDs {
		if inv, ok := s.sales[saleKey{tenantID, id}]; ok {
			out[id] = inv.view(tenantID, id)
		}
	}
	return out, nil
}

// pendingUnits is the units of reservations not yet durable.
func (inv *sale) pendingUnits() int {
	n := 0
	for _, r := range inv.res {
		if r.Status == domain.OrderPending {
			n += r.Quantity
		}
	}
	return n
}

// Reserve implements ports.InventoryStore, as reserve.lua.
func (s *Inventory) Reserve(_ context.Context, r domain.Reservation) (ports.ReserveResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserve(r)
}

func (s *Inventory) reserve(r domain.Reservation) (ports.ReserveResult, error) {
	inv, ok := s.sales[saleKey{r.TenantID, r.SaleID}]
	if !ok {
		return ports.ReserveResult{}, domain.ErrSaleNotFound
	}
	keyField := r.UserID.String() + ":" + r.IdempotencyKey
	if prior, dup := inv.keys[keyField]; dup {
		return ports.ReserveResult{Reservation: inv.res[prior], Duplicate: true, Remaining: inv.remaining}, nil
	}
	now := s.clock()
	if now.Before(inv.fence) || inv.rolledBack {
		return ports.ReserveResult{}, domain.Fenced()
	}
	if err := domain.CheckWindow(now, inv.starts, inv.ends); err != nil {
		return ports.ReserveResult{}, err
	}
	rec, err := inv.take(domain.Reservation{
		OrderID: r.OrderID, TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID, Quantity: r.Quantity,
		IdempotencyKey: r.IdempotencyKey, UnitPriceCents: inv.price, Currency: inv.currency,
		CreatedAt: now, Node: r.Node,
	}, now)
	if err != nil {
		return ports.ReserveResult{}, err
	}
	return ports.ReserveResult{Reservation: rec, Remaining: inv.remaining}, nil
}

// take applies rules 2 to 4 to rec and, if they pass, takes its stock and its buyer's
// allowance and records it pending, under its key, awaited since at, with the next number: what
// reserve, rereserve and adopt share (giveBack undoes it).
func (inv *sale) take(rec domain.Reservation, at time.Time) (domain.Reservation, error) {
	err := domain.CheckStock(domain.StockCheck{Remaining: inv.remaining, Limit: inv.limit, Bought: inv.buyers[rec.UserID], Quantity: rec.Quantity})
	if err != nil {
		return domain.Reservation{}, err
	}
	inv.remaining -= rec.Quantity
	inv.sold += rec.Quantity
	inv.buyers[rec.UserID] += rec.Quantity
	inv.keys[rec.UserID.String()+":"+rec.IdempotencyKey] = rec.OrderID
	inv.seq++
	rec.Seq = inv.seq
	rec.Status = domain.OrderPending
	inv.res[rec.OrderID] = rec
	inv.awaited[rec.OrderID] = at
	return rec, nil
}

// Reservation implements ports.InventoryStore.
func (s *Inventory) Reservation(ctx context.Context, tenantID, saleID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	return s.FindReservation(ctx, tenantID, []uuid.UUID{saleID}, orderID)
}

// FindReservation implements ports.InventoryStore.
func (s *Inventory) FindReservation(_ context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range saleIDs {
		if inv, ok := s.sales[saleKey{tenantID, id}]; ok {
			if r, ok := inv.res[orderID]; ok {
				return r, true, nil
			}
		}
	}
	return domain.Reservation{}, false, nil
}

// MarkConfirmed implements ports.InventoryStore, as confirm.lua.
func (s *Inventory) MarkConfirmed(_ context.Context, r domain.Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{r.TenantID, r.SaleID}]
	if !ok {
		return nil
	}
	if rec, ok := inv.res[r.OrderID]; ok && rec.Status == domain.OrderPending {
		rec.Status = domain.OrderConfirmed
		inv.res[r.OrderID] = rec
	}
	delete(inv.awaited, r.OrderID)
	return nil
}

// Release implements ports.InventoryStore, as release.lua.
func (s *Inventory) Release(_ context.Context, r domain.Reservation) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{r.TenantID, r.SaleID}]
	if !ok {
		return false, nil
	}
	rec, ok := inv.res[r.OrderID]
	if !ok || rec.Status != domain.OrderPending {
		return false, nil
	}
	inv.giveBack(rec)
	rec.Status = domain.OrderFailed
	inv.res[r.OrderID] = rec
	return true, nil
}

// giveBack returns a pending reservation's stock and allowance.
func (inv *sale) giveBack(rec domain.Reservation) {
	inv.remaining += rec.Quantity
	inv.sold -= rec.Quantity
	if inv.buyers[rec.UserID] -= rec.Quantity; inv.buyers[rec.UserID] <= 0 {
		delete(inv.buyers, rec.UserID)
	}
	delete(inv.awaited, rec.OrderID)
}

// Rereserve implements ports.InventoryStore, as rereserve.lua: no window check.
func (s *Inventory) Rereserve(_ context.Context, r domain.Reservation) (domain.Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{r.TenantID, r.SaleID}]
	if !ok {
		return domain.Reservation{}, domain.NotRetryable()
	}
	rec, ok := inv.res[r.OrderID]
	switch {
	case !ok || (rec.Status != domain.OrderPending && rec.Status != domain.OrderFailed):
		return domain.Reservation{}, domain.NotRetryable()
	case rec.Status == domain.OrderPending:
		return rec, nil
	case inv.rolledBack:
		return domain.Reservation{}, domain.Fenced()
	}
	return inv.take(rec, s.clock())
}

// Adopt implements ports.InventoryStore, as adopt.lua.
func (s *Inventory) Adopt(_ context.Context, r domain.Reservation) (domain.Reservation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{r.TenantID, r.SaleID}]
	if !ok {
		return domain.Reservation{}, false, domain.ErrSaleNotFound
	}
	if rec, ok := inv.res[r.OrderID]; ok {
		return rec, false, nil
	}
	if inv.rolledBack {
		return domain.Reservation{}, false, domain.Fenced()
	}
	rec := r
	rec.CreatedAt = r.CreatedAt.Truncate(time.Millisecond).UTC()
	rec, err := inv.take(rec, s.clock())
	return rec, err == nil, err
}

// RestoreSale implements ports.InventoryStore, as restore.lua.
func (s *Inventory) RestoreSale(_ context.Context, sl domain.Sale, orders []domain.Order, high ports.HighWater,
	fence time.Time) (ports.Restored, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := saleKey{sl.TenantID, sl.ID}
	old, ok := s.sales[k]
	if ok && !old.rolledBack && old.seq >= high.Seq {
		if _, has := old.res[high.OrderID]; has || high.OrderID == uuid.Nil {
			return ports.Restored{Inventory: old.view(sl.TenantID, sl.ID)}, nil
		}
	}
	if !ok {
		old = &sale{}
	}
	inv := &sale{total: sl.TotalStock, limit: sl.PerUserLimit, starts: sl.StartsAt.Truncate(time.Millisecond),
		ends: sl.EndsAt.Truncate(time.Millisecond), fence: fence.Truncate(time.Millisecond), price: sl.PriceCents,
		currency: sl.Currency, buyers: map[uuid.UUID]int{}, keys: map[string]uuid.UUID{},
		res: map[uuid.UUID]domain.Reservation{}, awaited: map[uuid.UUID]time.Time{},
		seq: max(old.seq, high.Seq) + 1<<30}
	durable := map[uuid.UUID]bool{}
	for _, o := range orders {
		if o.Status != domain.OrderConfirmed && o.Status != domain.OrderFailed {
			continue
		}
		durable[o.ID] = true
		if o.Status == domain.OrderConfirmed {
			inv.sold += o.Quantity
			inv.buyers[o.UserID] += o.Quantity
		}
		inv.keys[o.UserID.String()+":"+o.IdempotencyKey] = o.ID
		inv.res[o.ID] = domain.Reservation{OrderID: o.ID, TenantID: o.TenantID, SaleID: o.SaleID, UserID: o.UserID,
			Quantity: o.Quantity, IdempotencyKey: o.IdempotencyKey, UnitPriceCents: o.UnitPriceCents, Currency: o.Currency,
			CreatedAt: o.CreatedAt.Truncate(time.Millisecond).UTC(), Status: o.Status}
	}
	if sl.TotalStock < inv.sold {
		return ports.Restored{}, domain.StockBelowSold(sl.TotalStock, inv.sold)
	}
	// Pending reservations the orders lack keep their stock, oldest first, as far as it goes.
	var pending []domain.Reservation
	for id, r := range old.res {
		if !durable[id] && r.Status == domain.OrderPending {
			pending = append(pending, r)
		}
	}
	slices.SortFunc(pending, func(a, b domain.Reservation) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.OrderID.String(), b.OrderID.String())
	})
	var dropped []uuid.UUID
	for _, r := range pending {
		if inv.sold+r.Quantity > inv.total {
			r.Status = domain.OrderFailed
			dropped = append(dropped, r.OrderID)
		} else {
			inv.sold += r.Quantity
			inv.buyers[r.UserID] += r.Quantity
			inv.awaited[r.OrderID] = old.awaited[r.OrderID]
		}
		inv.res[r.OrderID] = r
	}
	for key, id := range old.keys {
		if _, ok := inv.keys[key]; !ok {
			inv.keys[key] = id
		}
	}
	inv.remaining = sl.TotalStock - inv.sold
	s.sales[k] = inv
	return ports.Restored{Inventory: inv.view(sl.TenantID, sl.ID), Restored: true, Dropped: dropped}, nil
}

// MarkRolledBack marks the sale's inventory rolled back, as reserve.lua does when an API node's
// floor shows the store lost reservations: purchases and adoptions wait for RestoreSale. A
// simulation for tests.
func (s *Inventory) MarkRolledBack(tenantID, saleID uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv, ok := s.sales[saleKey{tenantID, saleID}]; ok {
		inv.rolledBack = true
	}
}

// RollBack loses the sale's last n reservations, as a Redis restarted from an older file does:
// their stock, allowance and key come back as if never taken, and the numbering goes back by
// n. A simulation for tests. It does not mark the inventory (an API node would, on its next
// purchase): RestoreSale finds it behind from the high-water mark.
func (s *Inventory) RollBack(tenantID, saleID uuid.UUID, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{tenantID, saleID}]
	if !ok {
		return
	}
	recs := slices.Collect(maps.Values(inv.res))
	slices.SortFunc(recs, func(a, b domain.Reservation) int { return cmp.Compare(b.Seq, a.Seq) })
	for _, r := range recs[:min(n, len(recs))] {
		if r.Status != domain.OrderFailed {
			inv.giveBack(r)
		}
		delete(inv.res, r.OrderID)
		delete(inv.keys, r.UserID.String()+":"+r.IdempotencyKey)
		inv.seq--
	}
}

// Fence implements ports.InventoryStore, as fence.lua.
func (s *Inventory) Fence(_ context.Context, tenantID, saleID uuid.UUID, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv, ok := s.sales[saleKey{tenantID, saleID}]; ok && until.After(inv.fence) {
		inv.fence = until.Truncate(time.Millisecond)
	}
	return nil
}

// AwaitedReservations implements ports.InventoryStore: oldest first; a limit of 0 or less
// lists them all.
func (s *Inventory) AwaitedReservations(_ context.Context, tenantID, saleID uuid.UUID, before time.Time, limit int) ([]domain.Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{tenantID, saleID}]
	if !ok {
		return nil, nil
	}
	type entry struct {
		at time.Time
		r  domain.Reservation
	}
	var es []entry
	for id, at := range inv.awaited {
		if !at.After(before.Truncate(time.Millisecond)) {
			es = append(es, entry{at, inv.res[id]})
		}
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return slices.Compare(a.r.OrderID[:], b.r.OrderID[:])
	})
	if limit > 0 && len(es) > limit {
		es = es[:limit]
	}
	out := make([]domain.Reservation, len(es))
	for i, e := range es {
		out[i] = e.r
	}
	return out, nil
}

// BuyerUnits is the units a buyer holds in a sale (reserved, pending or confirmed): an
// inspection for tests, as HGET on the buyers hash.
func (s *Inventory) BuyerUnits(tenantID, saleID, userID uuid.UUID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv, ok := s.sales[saleKey{tenantID, saleID}]; ok {
		return inv.buyers[userID]
	}
	return 0
}

// IsAwaited reports whether the order waits for PostgreSQL: an inspection for tests.
func (s *Inventory) IsAwaited(r domain.Reservation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv, ok := s.sales[saleKey{r.TenantID, r.SaleID}]; ok {
		_, ok = inv.awaited[r.OrderID]
		return ok
	}
	return false
}

// SaleState is a copy of one sale's inventory: an inspection for tests.
type SaleState struct {
	Total, Remaining, Sold, Limit int
	Starts, Ends                  time.Time
	Price                         int64
	Currency                      string
	Buyers                        map[uuid.UUID]int
}

// State copies a sale's inventory; ok is false if the store does not know the sale.
func (s *Inventory) State(tenantID, saleID uuid.UUID) (SaleState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.sales[saleKey{tenantID, saleID}]
	if !ok {
		return SaleState{}, false
	}
	buyers := make(map[uuid.UUID]int, len(inv.buyers))
	for k, v := range inv.buyers {
		buyers[k] = v
	}
	return SaleState{Total: inv.total, Remaining: inv.remaining, Sold: inv.sold, Limit: inv.limit, Starts: inv.starts,
		Ends: inv.ends, Price: inv.price, Currency: inv.currency, Buyers: buyers}, true
}

// SettleTransfers implements ports.InventoryStore: this store keeps a sale in one piece, and
// moves no stock between shards.
func (s *Inventory) SettleTransfers(context.Context, uuid.UUID, uuid.UUID) (int, error) {
	return 0, nil
}
