package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// SaleView is a sale with its live stock and the status computed from both.
type SaleView struct {
	Sale      domain.Sale
	Inventory domain.Inventory
	Status    domain.SaleStatus
}

func viewOf(s domain.Sale, inv domain.Inventory, now time.Time) SaleView {
	return SaleView{Sale: s, Inventory: inv, Status: s.Status(now, inv.Remaining)}
}

// Stock reads a sale's live inventory. When the store has none (never loaded, or Redis lost
// it) or lost part of it (Redis rolled back: see Check) it restores it from PostgreSQL: the
// confirmed orders hold their units, their buyers' allowances and their idempotency keys; and a
// sale that has started (or has orders) is fenced for Fence, so that orders accepted before the
// loss, still on their way to the worker, take their stock first (the worker adopts them)
// before new purchases do.
type Stock struct {
	Sales     ports.SaleRepository
	Orders    ports.OrderRepository
	Inventory ports.InventoryStore
	Now       func() time.Time
	Log       *slog.Logger
	// Fence is how long purchases wait after a live sale's inventory is restored.
	Fence time.Duration
	// Epoch marks the store once a whole pass of Check found every live sale's inventory there
	// and current, or rebuilt it.
	Epoch ports.StoreEpoch
	// Live is told of a restored inventory's stock (nil: nobody is).
	Live ports.LiveEvents
}

// Of reads the sale's inventory, restoring it if the store has none.
func (st Stock) Of(ctx context.Context, s domain.Sale) (domain.Inventory, error) {
	inv, ok, err := st.Inventory.Inventory(ctx, s.TenantID, s.ID)
	if err != nil || ok {
		return inv, err
	}
	return st.Restore(ctx, s)
}

// RestoreSale reads the sale (domain.ErrSaleNotFound if PostgreSQL has none) and restores its
// inventory.
func (st Stock) RestoreSale(ctx context.Context, tenantID, saleID uuid.UUID) error {
	s, err := st.Sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		return err
	}
	_, err = st.Restore(ctx, s)
	return err
}

// Restore recreates the sale's inventory from its durable orders, unless the store's is
// current (ports.InventoryStore.RestoreSale).
func (st Stock) Restore(ctx context.Context, s domain.Sale) (domain.Inventory, error) {
	highs, err := st.Orders.ReservationHighWaters(ctx, s.TenantID, s.ID, s.ShardCount())
	if err != nil {
		return domain.Inventory{}, fmt.Errorf("restore inventory: %w", err)
	}
	var high ports.HighWater
	if len(highs) > 0 {
		high = highs[0] // the highest: a rebuilt inventory numbers above it
	}
	orders, err := st.Orders.SaleOrders(ctx, s.TenantID, s.ID)
	if err != nil {
		return domain.Inventory{}, fmt.Errorf("restore inventory: %w", err)
	}
	now := st.Now()
	var fence time.Time
	if len(orders) > 0 || !now.Before(s.StartsAt) {
		fence = now.Add(st.Fence)
	}
	out, err := st.Inventory.RestoreSale(ctx, s, orders, high, fence)
	if err != nil {
		return domain.Inventory{}, fmt.Errorf("restore inventory: %w", err)
	}
	if out.Restored && st.Live != nil {
		// Every node learns the stock it has now: one that believed the sale sold out stops.
		st.Live.StockChanged(s.TenantID, s.ID)
	}
	if out.Restored && !fence.IsZero() {
		st.Log.WarnContext(ctx, "sale inventory restored from PostgreSQL: the inventory store had lost it or rolled back",
			"sale_id", s.ID, "orders", len(orders), "sold", out.Inventory.Sold, "pending", out.Inventory.Pending,
			"fenced_for", st.Fence)
	}
	if len(out.Dropped) > 0 {
		st.Log.ErrorContext(ctx, "accepted orders given up: the rolled-back inventory store had sold their stock twice",
			"sale_id", s.ID, "orders", len(out.Dropped), "order_ids", out.Dropped)
	}
	return out.Inventory, nil
}

// Check finds the live sales (open, or ended since since) whose inventory the store rolled
// back, and restores them: an API node marked the inventory RolledBack (its last accepted
// reservation was gone), or the inventory is behind PostgreSQL's high-water mark (ports.HighWater:
// the worker wrote orders the store no longer counts). Until then purchases of
// the sale wait (503): a rolled-back inventory would sell the stock of those orders again.
// While the store holds no epoch (ports.StoreEpoch: it lost its data, or is new) the pass also
// restores the live sales the store has not at all, rather than on their first use (Of), and
// stamps the epoch once every one is there: the roles that sell from the store are ready again.
func (st Stock) Check(ctx context.Context, since time.Time) (restored int, err error) {
	held, err := st.Epoch.Held(ctx)
	if err != nil {
		return 0, fmt.Errorf("check inventories: %w", err)
	}
	var token string
	if !held {
		if token, err = st.Epoch.BeginCheck(ctx); err != nil {
			return 0, fmt.Errorf("check inventories: %w", err)
		}
	}
	refs, err := st.Sales.LiveSales(ctx, since)
	if err != nil {
		return 0, fmt.Errorf("check inventories: %w", err)
	}
	byTenant := map[uuid.UUID][]uuid.UUID{}
	for _, ref := range refs {
		byTenant[ref.TenantID] = append(byTenant[ref.TenantID], ref.SaleID)
	}
	for tenantID, saleIDs := range byTenant {
		invs, err := st.Inventory.Inventories(ctx, tenantID, saleIDs)
		if err != nil {
			return restored, fmt.Errorf("check inventories: %w", err)
		}
		for _, inv := range invs {
			behind, err := st.behind(ctx, inv)
			if err != nil {
				return restored, err
			}
			if !behind {
				continue
			}
			if err := st.RestoreSale(ctx, tenantID, inv.SaleID); err != nil {
				return restored, fmt.Errorf("check inventories: %w", err)
			}
			restored++
		}
		if held {
			continue
		}
		for _, saleID := range saleIDs {
			if _, ok := invs[saleID]; ok {
				continue
			}
			if err := st.RestoreSale(ctx, tenantID, saleID); err != nil {
				return restored, fmt.Errorf("check inventories: %w", err)
			}
			restored++
		}
	}
	if held {
		return restored, nil
	}
	stamped, err := st.Epoch.Stamp(ctx, token)
	switch {
	case err != nil:
		return restored, fmt.Errorf("check inventories: %w", err)
	case stamped:
		st.Log.InfoContext(ctx, "inventory store epoch stamped: every live sale's inventory is there", "restored", restored)
	}
	return restored, nil
}

// behind reports whether the store's inventory lost reservations it had made (ports.HighWater):
// in a sharded inventory, whether any shard did.
func (st Stock) behind(ctx context.Context, inv domain.Inventory) (bool, error) {
	if inv.RolledBack {
		return true, nil
	}
	shards := max(inv.Shards, 1)
	highs, err := st.Orders.ReservationHighWaters(ctx, inv.TenantID, inv.SaleID, shards)
	if err != nil {
		return false, err
	}
	for _, high := range highs {
		if shards == 1 && inv.Seq < high.Seq {
			return true, nil
		}
		_, ok, err := st.Inventory.Reservation(ctx, inv.TenantID, inv.SaleID, high.OrderID)
		if err != nil {
			return false, fmt.Errorf("check inventory of sale %s: %w", inv.SaleID, err)
		}
		if !ok {
			return true, nil
		}
	}
	return false, nil
}

// CreateSale is an admin creating a sale in their tenant.
type CreateSale struct {
	Principal    domain.Principal
	Name         string
	PriceCents   int64
	Currency     string
	TotalStock   int
	PerUserLimit int
	StartsAt     time.Time
	EndsAt       time.Time
	// Shards is how many stock shards the inventory is split into (0: one).
	Shards int
	// WaitingRoom puts purchases behind an admission when enabled.
	WaitingRoom domain.WaitingRoom
}

// CreateSaleHandler handles CreateSale.
type CreateSaleHandler struct {
	Sales     ports.SaleRepository
	Inventory ports.InventoryStore
	// Cache gets the new sale at once: the first purchases of a burst read it (whether the sale
	// has a waiting room) from there, not from PostgreSQL.
	Cache     ports.SaleCache
	Scheduler ports.SaleScheduler
	Now       func() time.Time
	Log       *slog.Logger
}

// Handle stores the sale in PostgreSQL, then loads its stock into Redis. If Redis fails the
// sale still exists and its stock is loaded on first use.
func (h CreateSaleHandler) Handle(ctx context.Context, cmd CreateSale) (SaleView, error) {
	if !cmd.Principal.IsAdmin() {
		return SaleView{}, domain.ErrForbidden
	}
	now := h.Now().UTC()
	s := domain.Sale{
		ID: uuid.Must(uuid.NewV7()), TenantID: cmd.Principal.TenantID, Name: cmd.Name,
		PriceCents: cmd.PriceCents, Currency: cmd.Currency, TotalStock: cmd.TotalStock,
		PerUserLimit: cmd.PerUserLimit, StartsAt: pgTime(cmd.StartsAt), EndsAt: pgTime(cmd.EndsAt),
		Shards: max(cmd.Shards, 1), WaitingRoom: cmd.WaitingRoom, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Validate(); err != nil {
		return SaleView{}, err
	}
	if err := h.Sales.CreateSale(ctx, s); err != nil {
		return SaleView{}, fmt.Errorf("create sale: %w", err)
	}
	if err := h.Cache.FillSale(ctx, s); err != nil {
		h.Log.WarnContext(ctx, "sale cache write failed", "sale_id", s.ID, "err", err)
	}
	inv, err := h.Inventory.SyncSale(ctx, s, 0)
	if err != nil {
		h.Log.WarnContext(ctx, "sale created but its stock is not in the inventory store yet; it is loaded on first use",
			"sale_id", s.ID, "err", err)
		inv = domain.Inventory{SaleID: s.ID, TenantID: s.TenantID, Total: s.TotalStock, Remaining: s.TotalStock}
	}
	schedule(ctx, h.Scheduler, h.Log, s)
	return viewOf(s, inv, now), nil
}

// UpdateSale is an admin changing a sale.
type UpdateSale struct {
	Principal domain.Principal
	SaleID    uuid.UUID
	Patch     domain.SalePatch
}

// UpdateSaleHandler handles UpdateSale.
type UpdateSaleHandler struct {
	Sales     ports.SaleRepository
	Inventory ports.InventoryStore
	Stock     Stock
	Cache     ports.SaleCache
	Scheduler ports.SaleScheduler
	Live      ports.LiveEvents
	Now       func() time.Time
	Log       *slog.Logger
}

// Handle changes the sale with its row locked, applies the change to the live inventory inside
// that transaction (Redis refuses a stock below what is sold, which rolls back PostgreSQL), and
// replaces the cached copy once committed.
func (h UpdateSaleHandler) Handle(ctx context.Context, cmd UpdateSale) (SaleView, error) {
	if !cmd.Principal.IsAdmin() {
		return SaleView{}, domain.ErrForbidden
	}
	var (
		before domain.Sale
		inv    domain.Inventory
		synced bool
	)
	saved, err := h.Sales.UpdateSale(ctx, cmd.Principal.TenantID, cmd.SaleID,
		func(ctx context.Context, s domain.Sale) (domain.Sale, error) {
			next, err := cmd.Patch.Apply(s)
			if err != nil {
				return s, err
			}
			next.UpdatedAt = h.Now().UTC()
			if _, err := h.Stock.Of(ctx, s); err != nil { // a lost inventory is restored first
				return s, err
			}
			if inv, err = h.Inventory.SyncSale(ctx, next, 0); err != nil {
				return s, err
			}
			before, synced = s, true
			return next, nil
		})
	if err != nil {
		if synced { // Redis took the change but PostgreSQL did not commit: put Redis back.
			if _, rerr := h.Inventory.SyncSale(ctx, before, 0); rerr != nil {
				h.Log.ErrorContext(ctx, "sale update rolled back but the inventory store keeps the new values",
					"sale_id", cmd.SaleID, "err", rerr)
			}
		}
		return SaleView{}, fmt.Errorf("update sale: %w", err)
	}
	if err := h.Cache.ReplaceSale(ctx, saved); err != nil {
		h.Log.ErrorContext(ctx, "cached sale not replaced; stale until its TTL", "sale_id", saved.ID, "err", err)
	}
	if !saved.StartsAt.Equal(before.StartsAt) || !saved.EndsAt.Equal(before.EndsAt) {
		schedule(ctx, h.Scheduler, h.Log, saved)
	}
	h.Live.StockChanged(saved.TenantID, saved.ID)
	return viewOf(saved, inv, h.Now().UTC()), nil
}

// GetSaleHandler reads one sale: details cache-aside from Redis, stock live.
type GetSaleHandler struct {
	Sales ports.SaleRepository
	Stock Stock
	Cache ports.SaleCache
	Now   func() time.Time
	Log   *slog.Logger
}

// Handle returns the sale or domain.ErrSaleNotFound.
func (h GetSaleHandler) Handle(ctx context.Context, tenantID, saleID uuid.UUID) (SaleView, error) {
	s, err := h.sale(ctx, tenantID, saleID)
	if err != nil {
		return SaleView{}, err
	}
	inv, err := h.Stock.Of(ctx, s)
	if err != nil {
		return SaleView{}, fmt.Errorf("get sale: %w", err)
	}
	return viewOf(s, inv, h.Now()), nil
}

func (h GetSaleHandler) sale(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Sale, error) {
	s, ok, err := h.Cache.CachedSale(ctx, tenantID, saleID)
	if err != nil {
		h.Log.WarnContext(ctx, "sale cache read failed", "sale_id", saleID, "err", err)
	}
	if ok {
		return s, nil
	}
	s, err = h.Sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		return domain.Sale{}, err
	}
	if err := h.Cache.FillSale(ctx, s); err != nil {
		h.Log.WarnContext(ctx, "sale cache write failed", "sale_id", saleID, "err", err)
	}
	return s, nil
}

// ListSales lists a tenant's sales, optionally of one status.
type ListSales struct {
	TenantID uuid.UUID
	Status   *domain.SaleStatus
	Limit    int
}

// ListSalesHandler handles ListSales.
type ListSalesHandler struct {
	Sales     ports.SaleRepository
	Inventory ports.InventoryStore
	Stock     Stock
	Now       func() time.Time
}

// Handle reads the sales from PostgreSQL and their stock from Redis in one round trip each.
func (h ListSalesHandler) Handle(ctx context.Context, q ListSales) ([]SaleView, error) {
	f := ports.SaleFilter{Limit: q.Limit, Any: q.Status == nil}
	if q.Status != nil && *q.Status == domain.SaleEnded {
		f.EndedOnly = true
	}
	sales, err := h.Sales.ListSales(ctx, q.TenantID, f)
	if err != nil {
		return nil, fmt.Errorf("list sales: %w", err)
	}
	ids := make([]uuid.UUID, len(sales))
	for i, s := range sales {
		ids[i] = s.ID
	}
	invs, err := h.Inventory.Inventories(ctx, q.TenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("list sales: %w", err)
	}
	now := h.Now()
	views := make([]SaleView, 0, len(sales))
	for _, s := range sales {
		inv, ok := invs[s.ID]
		if !ok {
			if inv, err = h.Stock.Restore(ctx, s); err != nil {
				return nil, fmt.Errorf("list sales: %w", err)
			}
		}
		v := viewOf(s, inv, now)
		if q.Status == nil || v.Status == *q.Status {
			views = append(views, v)
		}
	}
	return views, nil
}

// schedule (re)schedules a sale's live events; the sale exists either way, so a failure is
// logged, not returned.
func schedule(ctx context.Context, sch ports.SaleScheduler, log *slog.Logger, s domain.Sale) {
	if sch == nil {
		return
	}
	if err := sch.ScheduleSale(ctx, s); err != nil {
		log.ErrorContext(ctx, "sale events not scheduled", "sale_id", s.ID, "err", err)
	}
}

// pgTime is t as PostgreSQL keeps it (UTC, microseconds), so a time handed out equals the one
// read back.
func pgTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
