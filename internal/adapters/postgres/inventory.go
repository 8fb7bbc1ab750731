package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Inventory implements ports.InventoryStore in PostgreSQL with row locks: the baseline the Redis
// inventory (the design, lua/*.lua) is measured against, selected with INVENTORY_BACKEND=postgres.
//
// It keeps what the Lua scripts keep, with the same rules and answers, in the tables of
// migration 00003. Every change to a sale runs in a transaction that first locks the sale's
// pg_inventory row (SELECT ... FOR UPDATE), so the purchases of one sale queue on that lock one
// at a time: correct, and exactly the contention the Redis design avoids. Taking that lock first
// everywhere also gives every transaction the same lock order, so they cannot deadlock. Times
// come from PostgreSQL's clock, read once the lock is held (like TIME inside a script), in
// milliseconds like the Redis records.
type Inventory struct {
	pool *pgxpool.Pool
	q    *sqlcdb.Queries
}

// NewInventory keeps the inventory on pool; each purchase holds one connection for its
// transaction.
func NewInventory(pool *pgxpool.Pool) *Inventory {
	return &Inventory{pool: pool, q: sqlcdb.New(pool)}
}

var _ ports.InventoryStore = (*Inventory)(nil)

func (s *Inventory) inTx(ctx context.Context, fn func(q *sqlcdb.Queries) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
}

// lockSale takes the sale's row lock; ok is false if the store does not know the sale.
func lockSale(ctx context.Context, q *sqlcdb.Queries, tenantID, saleID uuid.UUID) (sqlcdb.PgInventory, bool, error) {
	inv, err := q.LockPgInventory(ctx, sqlcdb.LockPgInventoryParams{TenantID: tenantID, SaleID: saleID})
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlcdb.PgInventory{}, false, nil
	}
	if err != nil {
		return sqlcdb.PgInventory{}, false, classify("lock inventory", err)
	}
	return inv, true, nil
}

// millis truncates t to the millisecond, as Redis keeps times (UnixMilli).
func millis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// SyncSale implements ports.InventoryStore, as lua/sync_sale.lua.
func (s *Inventory) SyncSale(ctx context.Context, sale domain.Sale, soldHint int) (domain.Inventory, error) {
	var out domain.Inventory
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		for {
			cur, ok, err := lockSale(ctx, q, sale.TenantID, sale.ID)
			if err != nil {
				return err
			}
			sold := soldHint
			if ok {
				sold = int(cur.Sold) // the hint only seeds a new inventory
			}
			if sale.TotalStock < sold {
				return domain.StockBelowSold(sale.TotalStock, sold)
			}
			out = domain.Inventory{SaleID: sale.ID, TenantID: sale.TenantID, Total: sale.TotalStock,
				Remaining: sale.TotalStock - sold, Sold: sold}
			if ok {
				err := q.UpdatePgInventory(ctx, sqlcdb.UpdatePgInventoryParams{
					TenantID: sale.TenantID, SaleID: sale.ID, Total: int32(sale.TotalStock),
					Remaining: int32(sale.TotalStock - sold), PerUserLimit: int32(sale.PerUserLimit),
					StartsAt: millis(sale.StartsAt), EndsAt: millis(sale.EndsAt),
					PriceCents: sale.PriceCents, Currency: sale.Currency,
				})
				if err != nil {
					return classify("update inventory", err)
				}
				return nil
			}
			n, err := q.InsertPgInventory(ctx, sqlcdb.InsertPgInventoryParams{
				TenantID: sale.TenantID, SaleID: sale.ID, Total: int32(sale.TotalStock),
				Remaining: int32(sale.TotalStock - sold), Sold: int32(sold), PerUserLimit: int32(sale.PerUserLimit),
				StartsAt: millis(sale.StartsAt), EndsAt: millis(sale.EndsAt),
				PriceCents: sale.PriceCents, Currency: sale.Currency,
			})
			if err != nil {
				return classify("create inventory", err)
			}
			if n == 1 {
				return nil
			}
			// A concurrent SyncSale created it first: lock that row and apply the change to it.
		}
	})
	if err != nil {
		return domain.Inventory{}, err
	}
	return out, nil
}

// Inventory implements ports.InventoryStore.
func (s *Inventory) Inventory(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Inventory, bool, error) {
	invs, err := s.Inventories(ctx, tenantID, []uuid.UUID{saleID})
	inv, ok := invs[saleID]
	return inv, ok, err
}

// Inventories implements ports.InventoryStore.
func (s *Inventory) Inventories(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID) (map[uuid.UUID]domain.Inventory, error) {
	out := make(map[uuid.UUID]domain.Inventory, len(saleIDs))
	if len(saleIDs) == 0 {
		return out, nil
	}
	rows, err := s.q.PgInventories(ctx, sqlcdb.PgInventoriesParams{TenantID: tenantID, SaleIds: saleIDs})
	if err != nil {
		return nil, classify("read inventories", err)
	}
	for _, r := range rows {
		out[r.SaleID] = domain.Inventory{SaleID: r.SaleID, TenantID: tenantID, Total: int(r.Total),
			Remaining: int(r.Remaining), Sold: int(r.Sold), Pending: int(r.Pending)}
	}
	return out, nil
}

// Reserve implements ports.InventoryStore, as lua/reserve.lua.
func (s *Inventory) Reserve(ctx context.Context, r domain.Reservation) (ports.ReserveResult, error) {
	var res ports.ReserveResult
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		var err error
		res, err = reserve(ctx, q, r)
		return err
	})
	if err != nil {
		return ports.ReserveResult{}, err
	}
	return res, nil
}

// reserve is lua/reserve.lua in the caller's transaction: a replay of the (user, key) pair
// first, then the purchase rules of internal/domain/purchase.go, then the take.
func reserve(ctx context.Context, q *sqlcdb.Queries, r domain.Reservation) (ports.ReserveResult, error) {
	inv, ok, err := lockSale(ctx, q, r.TenantID, r.SaleID)
	if err != nil {
		return ports.ReserveResult{}, err
	}
	if !ok {
		return ports.ReserveResult{}, domain.ErrSaleNotFound
	}
	chk, err := q.PgReserveCheck(ctx, sqlcdb.PgReserveCheckParams{
		TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID, IdempotencyKey: r.IdempotencyKey,
	})
	if err != nil {
		return ports.ReserveResult{}, classify("reserve", err)
	}
	if len(chk.PriorOrderIds) > 0 {
		prior, err := q.PgReservation(ctx, sqlcdb.PgReservationParams{
			TenantID: r.TenantID, SaleID: r.SaleID, OrderID: chk.PriorOrderIds[0],
		})
		if err != nil {
			return ports.ReserveResult{}, classify("read the reservation of a replayed key", err)
		}
		return ports.ReserveResult{Reservation: toReservation(prior), Duplicate: true, Remaining: int(inv.Remaining)}, nil
	}
	if inv.Fence != nil && chk.Now.Before(*inv.Fence) {
		return ports.ReserveResult{}, domain.Fenced()
	}
	if err := domain.CheckWindow(chk.Now, inv.StartsAt, inv.EndsAt); err != nil {
		return ports.ReserveResult{}, err
	}
	err = domain.CheckStock(domain.StockCheck{Remaining: int(inv.Remaining), Limit: int(inv.PerUserLimit),
		Bought: int(chk.Bought), Quantity: r.Quantity})
	if err != nil {
		return ports.ReserveResult{}, err
	}
	created := chk.Now.UTC()
	remaining, err := q.PgReserve(ctx, sqlcdb.PgReserveParams{
		TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID, UserID: r.UserID,
		Quantity: int32(r.Quantity), IdempotencyKey: r.IdempotencyKey,
		UnitPriceCents: inv.PriceCents, Currency: inv.Currency, CreatedAt: created, Node: r.Node,
	})
	if err != nil {
		return ports.ReserveResult{}, classify("reserve", err)
	}
	return ports.ReserveResult{
		Reservation: domain.Reservation{
			OrderID: r.OrderID, TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID, Quantity: r.Quantity,
			IdempotencyKey: r.IdempotencyKey, UnitPriceCents: inv.PriceCents, Currency: inv.Currency,
			CreatedAt: created, Status: domain.OrderPending, Node: r.Node,
		},
		Remaining: int(remaining),
	}, nil
}

func toReservation(r sqlcdb.PgReservation) domain.Reservation {
	return domain.Reservation{
		OrderID: r.OrderID, TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID, Quantity: int(r.Quantity),
		IdempotencyKey: r.IdempotencyKey, UnitPriceCents: r.UnitPriceCents, Currency: r.Currency,
		CreatedAt: r.CreatedAt.UTC(), Status: domain.OrderStatus(r.Status), Node: r.Node,
	}
}

// Reservation implements ports.InventoryStore.
func (s *Inventory) Reservation(ctx context.Context, tenantID, saleID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	r, err := s.q.PgReservation(ctx, sqlcdb.PgReservationParams{TenantID: tenantID, SaleID: saleID, OrderID: orderID})
	return foundReservation(r, err)
}

// FindReservation implements ports.InventoryStore.
func (s *Inventory) FindReservation(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	if len(saleIDs) == 0 {
		return domain.Reservation{}, false, nil
	}
	r, err := s.q.PgFindReservation(ctx, sqlcdb.PgFindReservationParams{TenantID: tenantID, SaleIds: saleIDs, OrderID: orderID})
	return foundReservation(r, err)
}

func foundReservation(r sqlcdb.PgReservation, err error) (domain.Reservation, bool, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Reservation{}, false, nil
	}
	if err != nil {
		return domain.Reservation{}, false, classify("find reservation", err)
	}
	return toReservation(r), true, nil
}

// MarkConfirmed implements ports.InventoryStore, as lua/confirm.lua.
func (s *Inventory) MarkConfirmed(ctx context.Context, r domain.Reservation) error {
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		if _, ok, err := lockSale(ctx, q, r.TenantID, r.SaleID); err != nil || !ok {
			return err // no inventory, no reservation: nothing to confirm
		}
		return q.PgConfirm(ctx, sqlcdb.PgConfirmParams{TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID})
	})
	if err != nil {
		return classify("confirm reservation", err)
	}
	return nil
}

// Release implements ports.InventoryStore, as lua/release.lua.
func (s *Inventory) Release(ctx context.Context, r domain.Reservation) (bool, error) {
	var released bool
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		if _, ok, err := lockSale(ctx, q, r.TenantID, r.SaleID); err != nil || !ok {
			return err
		}
		n, err := q.PgRelease(ctx, sqlcdb.PgReleaseParams{TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID})
		released = n == 1
		return err
	})
	if err != nil {
		return false, classify("release reservation", err)
	}
	return released, nil
}

// Rereserve implements ports.InventoryStore, as lua/rereserve.lua: no window check.
func (s *Inventory) Rereserve(ctx context.Context, r domain.Reservation) (domain.Reservation, error) {
	var out domain.Reservation
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		inv, ok, err := lockSale(ctx, q, r.TenantID, r.SaleID)
		if err != nil {
			return err
		}
		if !ok {
			return domain.NotRetryable() // no inventory holds no reservation
		}
		rec, err := q.PgReservation(ctx, sqlcdb.PgReservationParams{TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID})
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.NotRetryable()
		}
		if err != nil {
			return classify("rereserve", err)
		}
		switch domain.OrderStatus(rec.Status) {
		case domain.OrderPending:
			out = toReservation(rec) // still (or again) pending: nothing to take
			return nil
		case domain.OrderFailed:
		default:
			return domain.NotRetryable()
		}
		chk, err := q.PgRereserveCheck(ctx, sqlcdb.PgRereserveCheckParams{TenantID: r.TenantID, SaleID: r.SaleID, UserID: rec.UserID})
		if err != nil {
			return classify("rereserve", err)
		}
		err = domain.CheckStock(domain.StockCheck{Remaining: int(inv.Remaining), Limit: int(inv.PerUserLimit),
			Bought: int(chk.Bought), Quantity: int(rec.Quantity)})
		if err != nil {
			return err
		}
		err = q.PgRereserve(ctx, sqlcdb.PgRereserveParams{
			TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID, UserID: rec.UserID,
			Quantity: rec.Quantity, AwaitedSince: chk.Now,
		})
		if err != nil {
			return classify("rereserve", err)
		}
		rec.Status = string(domain.OrderPending)
		out = toReservation(rec)
		return nil
	})
	if err != nil {
		return domain.Reservation{}, err
	}
	return out, nil
}

// Adopt implements ports.InventoryStore, as lua/adopt.lua.
func (s *Inventory) Adopt(ctx context.Context, r domain.Reservation) (domain.Reservation, bool, error) {
	var out domain.Reservation
	var adopted bool
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		inv, ok, err := lockSale(ctx, q, r.TenantID, r.SaleID)
		if err != nil {
			return err
		}
		if !ok {
			return domain.ErrSaleNotFound
		}
		rec, err := q.PgReservation(ctx, sqlcdb.PgReservationParams{TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID})
		if err == nil {
			out = toReservation(rec)
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return classify("adopt", err)
		}
		chk, err := q.PgRereserveCheck(ctx, sqlcdb.PgRereserveCheckParams{TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID})
		if err != nil {
			return classify("adopt", err)
		}
		err = domain.CheckStock(domain.StockCheck{Remaining: int(inv.Remaining), Limit: int(inv.PerUserLimit),
			Bought: int(chk.Bought), Quantity: r.Quantity})
		if err != nil {
			return err
		}
		created := millis(r.CreatedAt)
		_, err = q.PgReserve(ctx, sqlcdb.PgReserveParams{
			TenantID: r.TenantID, SaleID: r.SaleID, OrderID: r.OrderID, UserID: r.UserID,
			Quantity: int32(r.Quantity), IdempotencyKey: r.IdempotencyKey,
			UnitPriceCents: r.UnitPriceCents, Currency: r.Currency, CreatedAt: created, Node: r.Node,
		})
		if err != nil {
			return classify("adopt", err)
		}
		out, adopted = r, true
		out.CreatedAt, out.Status = created, domain.OrderPending
		return nil
	})
	if err != nil {
		return domain.Reservation{}, false, err
	}
	return out, adopted, nil
}

// RestoreSale implements ports.InventoryStore, as lua/restore.lua. The baseline keeps its
// inventory in the database that holds the orders, so it cannot roll back apart from them: its
// reservations carry no number (high is the zero HighWater), and an inventory it has is always
// current.
func (s *Inventory) RestoreSale(ctx context.Context, sale domain.Sale, orders []domain.Order, _ ports.HighWater,
	fence time.Time) (ports.Restored, error) {
	sold := 0
	for _, o := range orders {
		if o.Status == domain.OrderConfirmed {
			sold += o.Quantity
		}
	}
	if sale.TotalStock < sold {
		return ports.Restored{}, domain.StockBelowSold(sale.TotalStock, sold)
	}
	var out ports.Restored
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		p := sqlcdb.PgRestoreInventoryParams{
			TenantID: sale.TenantID, SaleID: sale.ID, Total: int32(sale.TotalStock), Remaining: int32(sale.TotalStock - sold),
			Sold: int32(sold), PerUserLimit: int32(sale.PerUserLimit), StartsAt: millis(sale.StartsAt),
			EndsAt: millis(sale.EndsAt), PriceCents: sale.PriceCents, Currency: sale.Currency,
		}
		if !fence.IsZero() {
			f := millis(fence)
			p.Fence = &f
		}
		n, err := q.PgRestoreInventory(ctx, p)
		if err != nil || n == 0 { // n == 0: the sale has an inventory, which stays as it is
			return classify("restore inventory", err)
		}
		out.Restored = true
		for _, o := range orders {
			if o.Status != domain.OrderConfirmed && o.Status != domain.OrderFailed {
				continue
			}
			units := 0
			if o.Status == domain.OrderConfirmed {
				units = o.Quantity
			}
			err := q.PgRestoreOrder(ctx, sqlcdb.PgRestoreOrderParams{
				TenantID: o.TenantID, SaleID: o.SaleID, UserID: o.UserID, Units: int32(units), Quantity: int32(o.Quantity),
				OrderID: o.ID, IdempotencyKey: o.IdempotencyKey, UnitPriceCents: o.UnitPriceCents, Currency: o.Currency,
				CreatedAt: millis(o.CreatedAt), Status: string(o.Status),
			})
			if err != nil {
				return classify("restore order", err)
			}
		}
		return nil
	})
	if err != nil {
		return ports.Restored{}, err
	}
	out.Inventory, _, err = s.Inventory(ctx, sale.TenantID, sale.ID)
	return out, err
}

// Fence implements ports.InventoryStore.
func (s *Inventory) Fence(ctx context.Context, tenantID, saleID uuid.UUID, until time.Time) error {
	err := s.q.PgFenceInventory(ctx, sqlcdb.PgFenceInventoryParams{TenantID: tenantID, SaleID: saleID, Fence: millis(until)})
	return classify("fence sale", err)
}

// AwaitedReservations implements ports.InventoryStore: oldest first; a limit of 0 or less lists
// them all, as in Redis.
func (s *Inventory) AwaitedReservations(ctx context.Context, tenantID, saleID uuid.UUID, before time.Time, limit int) ([]domain.Reservation, error) {
	p := sqlcdb.PgAwaitedReservationsParams{TenantID: tenantID, SaleID: saleID, Before: millis(before)}
	if limit > 0 {
		p.MaxRows.Int32, p.MaxRows.Valid = int32(limit), true
	}
	rows, err := s.q.PgAwaitedReservations(ctx, p)
	if err != nil || len(rows) == 0 {
		if err != nil {
			err = classify("awaited reservations", err)
		}
		return nil, err
	}
	out := make([]domain.Reservation, len(rows))
	for i, r := range rows {
		out[i] = toReservation(r)
	}
	return out, nil
}

// SettleTransfers implements ports.InventoryStore: this store keeps a sale in one piece, and
// moves no stock between shards.
func (s *Inventory) SettleTransfers(context.Context, uuid.UUID, uuid.UUID) (int, error) {
	return 0, nil
}
