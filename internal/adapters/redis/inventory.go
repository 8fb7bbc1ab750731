package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/lua"
)

var (
	reserveScript   = goredis.NewScript(lua.Reserve)
	releaseScript   = goredis.NewScript(lua.Release)
	rereserveScript = goredis.NewScript(lua.Rereserve)
	confirmScript   = goredis.NewScript(lua.Confirm)
	syncSaleScript  = goredis.NewScript(lua.SyncSale)
	adoptScript     = goredis.NewScript(lua.Adopt)
	restoreScript   = goredis.NewScript(lua.Restore)
	fenceScript     = goredis.NewScript(lua.Fence)
)

// Inventory implements ports.InventoryStore.
type Inventory struct {
	rdb    goredis.UniversalClient
	prefix string
	// floors holds, per sale (its inv key), the accepted reservation with the highest number
	// this process has seen: reserve.lua refuses, and marks the inventory rolled back, when the
	// sale's number is below it or the store no longer has it (a Redis restarted from an older
	// file, or a replica promoted behind).
	mu     sync.Mutex
	floors map[string]floor
	// lossFence is how long a sale's purchases wait when this process learns of a loss (see lost).
	lossFence time.Duration
}

// floor is a sale's highest accepted reservation, as this process saw it, in the inventory's
// generation then (a rebuild starts a new one).
type floor struct {
	seq          int64
	orderID, gen string
}

// NewInventory stores under keys starting with prefix (REDIS_PREFIX), so several
// installations, or tests, can share one Redis.
func NewInventory(rdb goredis.UniversalClient, prefix string) *Inventory {
	return &Inventory{rdb: rdb, prefix: prefix, floors: map[string]floor{}, lossFence: 3 * time.Second}
}

// FenceOnLoss sets how long a sale's purchases wait when this process learns that the store lost
// reservations it accepted (INVENTORY_RESTORE_FENCE; 3 s by default), and returns s.
func (s *Inventory) FenceOnLoss(d time.Duration) *Inventory {
	s.lossFence = d
	return s
}

// lost is what this process does on learning that the store lost reservations it accepted in
// r's sale (ErrRolledBack): the sale is fenced first, then the floor forgotten. In that order, a
// concurrent purchase either still carries the floor (and is told the same) or meets the fence;
// none slips through before this node takes its recent orders again (app.PlaceOrderHandler).
func (s *Inventory) lost(ctx context.Context, r domain.Reservation) {
	_ = s.Fence(ctx, r.TenantID, r.SaleID, time.Now().Add(s.lossFence)) // best effort: the app fences too
	k := s.keysOf(r.TenantID, r.SaleID)
	s.mu.Lock()
	delete(s.floors, k.inv)
	s.mu.Unlock()
}

var _ ports.InventoryStore = (*Inventory)(nil)

// saleKeys are the keys of one sale; the {tenant:sale} hash tag keeps them in one cluster slot.
type saleKeys struct{ inv, buyers, keys, res, awaited string }

func (s *Inventory) keysOf(tenantID, saleID uuid.UUID) saleKeys {
	base := s.prefix + ":{" + tenantID.String() + ":" + saleID.String() + "}:"
	return saleKeys{inv: base + "inv", buyers: base + "buyers", keys: base + "keys", res: base + "res", awaited: base + "awaited"}
}

// reserveKeys are the KEYS of reserve.lua (and discard.lua).
func (k saleKeys) reserveKeys() []string { return []string{k.inv, k.buyers, k.keys, k.res, k.awaited} }

// reserveArgs are the ARGV of reserve.lua.
func (s *Inventory) reserveArgs(k saleKeys, r domain.Reservation) []any {
	s.mu.Lock()
	f := s.floors[k.inv]
	s.mu.Unlock()
	return []any{r.OrderID.String(), r.UserID.String(), r.Quantity, r.IdempotencyKey, r.Node, f.seq, f.orderID, f.gen}
}

// accepted raises the floor of r's sale to r, a new reservation accepted for good (one undone
// by its own request, like a reservation no replica acknowledged, must not become a floor; nor
// a duplicate, perhaps restored without its number), taken in generation gen; a floor of
// another generation is replaced.
func (s *Inventory) accepted(r domain.Reservation, gen string) {
	k := s.keysOf(r.TenantID, r.SaleID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.floors[k.inv]; r.Seq > f.seq || gen != f.gen {
		s.floors[k.inv] = floor{seq: r.Seq, orderID: r.OrderID.String(), gen: gen}
	}
}

// reservationRecord is a reservation as the Lua scripts store it (short names: one per order).
type reservationRecord struct {
	OrderID  string `json:"o"`
	UserID   string `json:"u"`
	Quantity int    `json:"q"`
	Key      string `json:"k"`
	Price    string `json:"p"`
	Currency string `json:"c"`
	TimeMS   string `json:"t"`
	Status   string `json:"s"`
	Node     string `json:"d,omitempty"`
	Seq      int64  `json:"n,omitempty"`
}

func decodeReservation(tenantID, saleID uuid.UUID, raw string) (domain.Reservation, error) {
	var rec reservationRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return domain.Reservation{}, fmt.Errorf("decode reservation: %w", err)
	}
	orderID, err1 := uuid.Parse(rec.OrderID)
	userID, err2 := uuid.Parse(rec.UserID)
	price, err3 := strconv.ParseInt(rec.Price, 10, 64)
	ms, err4 := strconv.ParseInt(rec.TimeMS, 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return domain.Reservation{}, fmt.Errorf("decode reservation %q: %w", raw, err)
	}
	return domain.Reservation{
		OrderID: orderID, TenantID: tenantID, SaleID: saleID, UserID: userID, Quantity: rec.Quantity,
		IdempotencyKey: rec.Key, UnitPriceCents: price, Currency: rec.Currency,
		CreatedAt: time.UnixMilli(ms).UTC(), Status: domain.OrderStatus(rec.Status), Node: rec.Node, Seq: rec.Seq,
	}, nil
}

// SyncSale implements ports.InventoryStore.
func (s *Inventory) SyncSale(ctx context.Context, sale domain.Sale, soldHint int) (domain.Inventory, error) {
	k := s.keysOf(sale.TenantID, sale.ID)
	reply, err := syncSaleScript.Run(ctx, s.rdb, []string{k.inv},
		sale.TotalStock, sale.PerUserLimit, sale.StartsAt.UnixMilli(), sale.EndsAt.UnixMilli(),
		sale.PriceCents, sale.Currency, soldHint).StringSlice()
	if err != nil {
		return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
	}
	if reply[0] == "BELOW_SOLD" {
		sold, _ := strconv.Atoi(reply[1])
		return domain.Inventory{}, domain.StockBelowSold(sale.TotalStock, sold)
	}
	remaining, _ := strconv.Atoi(reply[1])
	sold, _ := strconv.Atoi(reply[2])
	return domain.Inventory{SaleID: sale.ID, TenantID: sale.TenantID, Total: sale.TotalStock, Remaining: remaining, Sold: sold}, nil
}

// Inventory implements ports.InventoryStore.
func (s *Inventory) Inventory(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Inventory, bool, error) {
	invs, err := s.Inventories(ctx, tenantID, []uuid.UUID{saleID})
	inv, ok := invs[saleID]
	return inv, ok, err
}

// Inventories implements ports.InventoryStore.
func (s *Inventory) Inventories(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID) (map[uuid.UUID]domain.Inventory, error) {
	cmds := make([]*goredis.SliceCmd, len(saleIDs))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range saleIDs {
			cmds[i] = p.HMGet(ctx, s.keysOf(tenantID, id).inv, "total", "remaining", "sold", "pending", "seq", "rolledback")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read inventories: %w", err)
	}
	out := make(map[uuid.UUID]domain.Inventory, len(saleIDs))
	for i, id := range saleIDs {
		v := cmds[i].Val()
		if len(v) != 6 || v[0] == nil {
			continue
		}
		seq, _ := strconv.ParseInt(str(v[4]), 10, 64)
		out[id] = domain.Inventory{SaleID: id, TenantID: tenantID, Total: atoi(v[0]), Remaining: atoi(v[1]),
			Sold: atoi(v[2]), Pending: atoi(v[3]), Seq: seq, RolledBack: v[5] != nil}
	}
	return out, nil
}

func atoi(v any) int {
	n, _ := strconv.Atoi(str(v))
	return n
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Reserve implements ports.InventoryStore.
func (s *Inventory) Reserve(ctx context.Context, r domain.Reservation) (ports.ReserveResult, error) {
	k := s.keysOf(r.TenantID, r.SaleID)
	reply, err := reserveScript.Run(ctx, s.rdb, k.reserveKeys(), s.reserveArgs(k, r)...).StringSlice()
	if err != nil {
		return ports.ReserveResult{}, fmt.Errorf("reserve script: %w", err)
	}
	res, gen, err := s.reserveOutcome(r, reply)
	switch {
	case err == nil && !res.Duplicate:
		s.accepted(res.Reservation, gen)
	case errors.Is(err, ports.ErrRolledBack):
		s.lost(ctx, r)
	}
	return res, err
}

// reserveOutcome reads the reserve script's reply, and the inventory's generation with a
// reservation.
func (s *Inventory) reserveOutcome(r domain.Reservation, reply []string) (ports.ReserveResult, string, error) {
	switch reply[0] {
	case "OK", "DUP":
		rec, err := decodeReservation(r.TenantID, r.SaleID, reply[1])
		if err != nil {
			return ports.ReserveResult{}, "", err
		}
		remaining, _ := strconv.Atoi(reply[2])
		return ports.ReserveResult{Reservation: rec, Duplicate: reply[0] == "DUP", Remaining: remaining}, reply[3], nil
	case "NO_SALE":
		return ports.ReserveResult{}, "", domain.ErrSaleNotFound
	case "NOT_STARTED":
		return ports.ReserveResult{}, "", domain.ErrSaleNotStarted
	case "ENDED":
		return ports.ReserveResult{}, "", domain.ErrSaleEnded
	case "FENCED":
		return ports.ReserveResult{}, "", domain.Fenced()
	case "ROLLED_BACK": // the caller calls lost
		return ports.ReserveResult{}, "", errors.Join(domain.Fenced(), ports.ErrRolledBack)
	}
	return ports.ReserveResult{}, "", refusal(reply, r.Quantity)
}

// refusal maps the scripts' stock and limit refusals to the domain's (rules 2 to 4 of
// internal/domain/purchase.go, which the scripts apply).
func refusal(reply []string, qty int) error {
	switch reply[0] {
	case "SOLD_OUT":
		return domain.SoldOut()
	case "LIMIT":
		allowed, _ := strconv.Atoi(reply[1])
		return domain.LimitExceeded(qty, allowed)
	case "INSUFFICIENT":
		left, _ := strconv.Atoi(reply[1])
		return domain.InsufficientStock(qty, left)
	case "NO_SALE":
		return domain.ErrSaleNotFound
	case "MISSING", "NOT_RETRYABLE":
		return domain.NotRetryable()
	case "FENCED":
		return domain.Fenced()
	}
	return fmt.Errorf("inventory script: unexpected reply %q", reply)
}

// Reservation implements ports.InventoryStore.
func (s *Inventory) Reservation(ctx context.Context, tenantID, saleID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	return s.FindReservation(ctx, tenantID, []uuid.UUID{saleID}, orderID)
}

// FindReservation implements ports.InventoryStore.
func (s *Inventory) FindReservation(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	cmds := make([]*goredis.StringCmd, len(saleIDs))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range saleIDs {
			cmds[i] = p.HGet(ctx, s.keysOf(tenantID, id).res, orderID.String())
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return domain.Reservation{}, false, fmt.Errorf("find reservation: %w", err)
	}
	for i, cmd := range cmds {
		if cmd.Err() == nil {
			r, err := decodeReservation(tenantID, saleIDs[i], cmd.Val())
			return r, err == nil, err
		}
	}
	return domain.Reservation{}, false, nil
}

// MarkConfirmed implements ports.InventoryStore.
func (s *Inventory) MarkConfirmed(ctx context.Context, r domain.Reservation) error {
	k := s.keysOf(r.TenantID, r.SaleID)
	if err := confirmScript.Run(ctx, s.rdb, []string{k.res, k.awaited, k.inv}, r.OrderID.String()).Err(); err != nil {
		return fmt.Errorf("confirm reservation: %w", err)
	}
	return nil
}

// Release implements ports.InventoryStore.
func (s *Inventory) Release(ctx context.Context, r domain.Reservation) (bool, error) {
	k := s.keysOf(r.TenantID, r.SaleID)
	reply, err := releaseScript.Run(ctx, s.rdb, []string{k.inv, k.buyers, k.res, k.awaited}, r.OrderID.String()).StringSlice()
	if err != nil {
		return false, fmt.Errorf("release reservation: %w", err)
	}
	return reply[0] == "OK", nil
}

// Rereserve implements ports.InventoryStore.
func (s *Inventory) Rereserve(ctx context.Context, r domain.Reservation) (domain.Reservation, error) {
	k := s.keysOf(r.TenantID, r.SaleID)
	reply, err := rereserveScript.Run(ctx, s.rdb, []string{k.inv, k.buyers, k.res, k.awaited}, r.OrderID.String()).StringSlice()
	if err != nil {
		return domain.Reservation{}, fmt.Errorf("rereserve script: %w", err)
	}
	if reply[0] != "OK" {
		return domain.Reservation{}, refusal(reply, r.Quantity)
	}
	return decodeReservation(r.TenantID, r.SaleID, reply[1])
}

// Adopt implements ports.InventoryStore, with lua/adopt.lua.
func (s *Inventory) Adopt(ctx context.Context, r domain.Reservation) (domain.Reservation, bool, error) {
	k := s.keysOf(r.TenantID, r.SaleID)
	reply, err := adoptScript.Run(ctx, s.rdb, k.reserveKeys(), r.OrderID.String(), r.UserID.String(), r.Quantity,
		r.IdempotencyKey, r.UnitPriceCents, r.Currency, r.CreatedAt.UnixMilli()).StringSlice()
	if err != nil {
		return domain.Reservation{}, false, fmt.Errorf("adopt script: %w", err)
	}
	switch reply[0] {
	case "OK", "HAS":
		res, err := decodeReservation(r.TenantID, r.SaleID, reply[1])
		return res, reply[0] == "OK" && err == nil, err
	}
	return domain.Reservation{}, false, refusal(reply, r.Quantity)
}

// RestoreSale implements ports.InventoryStore, with lua/restore.lua.
func (s *Inventory) RestoreSale(ctx context.Context, sale domain.Sale, orders []domain.Order, high ports.HighWater,
	fence time.Time) (ports.Restored, error) {
	k := s.keysOf(sale.TenantID, sale.ID)
	var fenceMS int64
	if !fence.IsZero() {
		fenceMS = fence.UnixMilli()
	}
	highID := ""
	if high.OrderID != uuid.Nil {
		highID = high.OrderID.String()
	}
	args := make([]any, 0, 10+8*len(orders))
	args = append(args, sale.TotalStock, sale.PerUserLimit, sale.StartsAt.UnixMilli(), sale.EndsAt.UnixMilli(),
		sale.PriceCents, sale.Currency, fenceMS, high.Seq, highID, uuid.NewString())
	for _, o := range orders {
		if o.Status != domain.OrderConfirmed && o.Status != domain.OrderFailed {
			continue
		}
		args = append(args, o.ID.String(), o.UserID.String(), o.Quantity, o.IdempotencyKey, o.UnitPriceCents,
			o.Currency, o.CreatedAt.UnixMilli(), string(o.Status))
	}
	reply, err := restoreScript.Run(ctx, s.rdb, k.reserveKeys(), args...).StringSlice()
	if err != nil {
		return ports.Restored{}, fmt.Errorf("restore script: %w", err)
	}
	if reply[0] == "BELOW_SOLD" {
		sold, _ := strconv.Atoi(reply[1])
		return ports.Restored{}, domain.StockBelowSold(sale.TotalStock, sold)
	}
	out := ports.Restored{Restored: reply[0] == "OK"}
	if out.Restored {
		for _, id := range reply[3:] {
			orderID, err := uuid.Parse(id)
			if err != nil {
				return ports.Restored{}, fmt.Errorf("restore script: dropped order %q: %w", id, err)
			}
			out.Dropped = append(out.Dropped, orderID)
		}
	}
	out.Inventory, _, err = s.Inventory(ctx, sale.TenantID, sale.ID)
	return out, err
}

// Fence implements ports.InventoryStore, with lua/fence.lua.
func (s *Inventory) Fence(ctx context.Context, tenantID, saleID uuid.UUID, until time.Time) error {
	if err := fenceScript.Run(ctx, s.rdb, []string{s.keysOf(tenantID, saleID).inv}, until.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("fence sale: %w", err)
	}
	return nil
}

// AwaitedReservations implements ports.InventoryStore.
func (s *Inventory) AwaitedReservations(ctx context.Context, tenantID, saleID uuid.UUID, before time.Time, limit int) ([]domain.Reservation, error) {
	k := s.keysOf(tenantID, saleID)
	ids, err := s.rdb.ZRangeByScore(ctx, k.awaited, &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(before.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	raws, err := s.rdb.HMGet(ctx, k.res, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("awaited reservations: %w", err)
	}
	out := make([]domain.Reservation, 0, len(raws))
	for _, raw := range raws {
		str, ok := raw.(string)
		if !ok {
			continue
		}
		r, err := decodeReservation(tenantID, saleID, str)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
