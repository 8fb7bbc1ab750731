package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// shards caches each sale's shard count, by its head inv key (shardCount).
	shards sync.Map
	// wait is what transfers between shards wait for (REDIS_DURABILITY=replica; NewPurchases).
	wait Wait
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
// r's sale (ErrRolledBack): the sale is fenced first, then the floors forgotten, those of every
// shard of a sharded sale (it was rebuilt whole: told once, not once per shard). In that order,
// a concurrent purchase either still carries a floor (and is told the same) or meets the fence;
// none slips through before this node takes its recent orders again (app.PlaceOrderHandler).
func (s *Inventory) lost(ctx context.Context, r domain.Reservation) {
	_ = s.Fence(ctx, r.TenantID, r.SaleID, time.Now().Add(s.lossFence)) // best effort: the app fences too
	n, _ := s.shardCount(ctx, r.TenantID, r.SaleID)
	s.mu.Lock()
	for k := range max(n, 1) {
		delete(s.floors, s.shardKeys(r.TenantID, r.SaleID, k).inv)
	}
	s.mu.Unlock()
}

var _ ports.InventoryStore = (*Inventory)(nil)

// saleKeys are the keys of one sale, or of one shard of a sharded sale (shards.go); the
// {tenant:sale} hash tag ({tenant:sale:k} for shard k) keeps them in one cluster slot.
type saleKeys struct{ inv, buyers, keys, res, awaited, xout, xin string }

// keysOf are the keys of the sale, or of its head (shard 0) if sharded.
func (s *Inventory) keysOf(tenantID, saleID uuid.UUID) saleKeys {
	return s.shardKeys(tenantID, saleID, 0)
}

// rate is a client's purchase rate-limit counter in the sale's slot (on a Cluster).
func (k saleKeys) rate(client string) string {
	return strings.TrimSuffix(k.inv, "inv") + "rl:" + client
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
func (s *Inventory) accepted(r domain.Reservation, k saleKeys, gen string) {
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

// SyncSale implements ports.InventoryStore. A sharded sale's shards are created with equal
// shares of the stock (the parts first, the head last: a sale is there once its head is), and
// changed the same way; the head alone takes a change of the total (sync_sale.lua).
func (s *Inventory) SyncSale(ctx context.Context, sale domain.Sale, soldHint int) (_ domain.Inventory, err error) {
	defer func() { err = unavailable(err) }()
	n := sale.ShardCount()
	args := func(k, share, hint int) []any {
		return []any{sale.TotalStock, sale.PerUserLimit, sale.StartsAt.UnixMilli(), sale.EndsAt.UnixMilli(),
			sale.PriceCents, sale.Currency, hint, n, k, share}
	}
	if n == 1 {
		reply, err := syncSaleScript.Run(ctx, s.rdb, []string{s.keysOf(sale.TenantID, sale.ID).inv}, args(0, 0, soldHint)...).StringSlice()
		if err != nil {
			return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
		}
		if reply[0] == "BELOW_SOLD" {
			sold, _ := strconv.Atoi(reply[1])
			return domain.Inventory{}, domain.StockBelowSold(sale.TotalStock, sold)
		}
		remaining, _ := strconv.Atoi(reply[1])
		sold, _ := strconv.Atoi(reply[2])
		return domain.Inventory{SaleID: sale.ID, TenantID: sale.TenantID, Total: sale.TotalStock, Remaining: remaining,
			Sold: sold}, nil
	}
	// A total below the units sold changes nothing, not even the other fields.
	head := s.keysOf(sale.TenantID, sale.ID)
	soldHintKey := strings.TrimSuffix(head.inv, "inv") + "soldhint"
	if inv, ok, err := s.Inventory(ctx, sale.TenantID, sale.ID); err != nil {
		return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
	} else if ok && sale.TotalStock < inv.Sold {
		return domain.Inventory{}, domain.StockBelowSold(sale.TotalStock, inv.Sold)
	} else if !ok {
		// Nodes creating the sale at once, each with its own count of the units sold, must
		// split the stock alike: the first count written is the one they all use.
		prev, err := s.rdb.SetArgs(ctx, soldHintKey, soldHint,
			goredis.SetArgs{Mode: "NX", Get: true, TTL: 10 * time.Second}).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
		}
		if agreed, err := strconv.Atoi(prev); err == nil {
			soldHint = agreed
		}
	}
	// Equal shares; units sold before the inventory existed (soldHint) all on the head.
	share := func(k int) int { return sale.TotalStock/n + btoi(k < sale.TotalStock%n) }
	if soldHint > 0 {
		share = func(k int) int { return sale.TotalStock * btoi(k == 0) }
	}
	cmds := make([]*goredis.Cmd, n)
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for k := n - 1; k > 0; k-- {
			cmds[k] = syncSaleScript.Eval(ctx, p, []string{s.shardKeys(sale.TenantID, sale.ID, k).inv}, args(k, share(k), 0)...)
		}
		return nil
	}); err != nil {
		return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
	}
	for range 5 {
		reply, err := syncSaleScript.Run(ctx, s.rdb, []string{head.inv}, args(0, share(0), soldHint)...).StringSlice()
		if err != nil {
			return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
		}
		if reply[0] == "BELOW_SOLD" {
			_ = s.rdb.Del(ctx, soldHintKey).Err() // a creation refused: the next one counts afresh
			sold, _ := strconv.Atoi(reply[1])
			return domain.Inventory{}, domain.StockBelowSold(sale.TotalStock, sold)
		}
		if reply[0] == "OK" {
			s.undrain(ctx, sale.TenantID, sale.ID)
			inv, _, err := s.Inventory(ctx, sale.TenantID, sale.ID)
			return domain.Inventory{SaleID: sale.ID, TenantID: sale.TenantID, Total: inv.Total, Remaining: inv.Remaining,
				Sold: inv.Sold}, err
		}
		// NEED: the cut takes more than the head holds; move stock to it from the others.
		need, _ := strconv.Atoi(reply[1])
		got, _, err := s.gather(ctx, sale.TenantID, sale.ID, 0, n, need)
		if err != nil {
			return domain.Inventory{}, fmt.Errorf("sync sale inventory: %w", err)
		}
		if got < need {
			inv, _, err := s.Inventory(ctx, sale.TenantID, sale.ID)
			if err != nil {
				return domain.Inventory{}, err
			}
			if sale.TotalStock < inv.Sold {
				return domain.Inventory{}, domain.StockBelowSold(sale.TotalStock, inv.Sold)
			}
		}
	}
	return domain.Inventory{}, domain.ErrUnavailable.WithDetail("the stock is moving between the sale's shards; retry in a moment")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Inventory implements ports.InventoryStore.
func (s *Inventory) Inventory(ctx context.Context, tenantID, saleID uuid.UUID) (_ domain.Inventory, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	invs, err := s.Inventories(ctx, tenantID, []uuid.UUID{saleID})
	inv, ok := invs[saleID]
	return inv, ok, err
}

// inventoryFields are those Inventories reads from each shard.
var inventoryFields = []string{"total", "remaining", "sold", "pending", "seq", "rolledback", "rebuilding", "shards", "saletotal"}

// Inventories implements ports.InventoryStore: one round trip for the heads, and one more for
// the other shards of sharded sales. A sharded sale's inventory adds up its shards (units being
// moved between two shards are in neither for that moment); a shard missing, rolled back or
// being rebuilt makes it RolledBack.
func (s *Inventory) Inventories(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID) (_ map[uuid.UUID]domain.Inventory, err error) {
	defer func() { err = unavailable(err) }()
	read := func(keys []string) ([]*goredis.SliceCmd, error) {
		cmds := make([]*goredis.SliceCmd, len(keys))
		_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.HMGet(ctx, k, inventoryFields...)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read inventories: %w", err)
		}
		return cmds, nil
	}
	heads := make([]string, len(saleIDs))
	for i, id := range saleIDs {
		heads[i] = s.keysOf(tenantID, id).inv
	}
	headCmds, err := read(heads)
	if err != nil {
		return nil, err
	}
	var parts []string
	var partOf []int // index in saleIDs of each part
	out := make(map[uuid.UUID]domain.Inventory, len(saleIDs))
	for i, id := range saleIDs {
		v := headCmds[i].Val()
		if len(v) != len(inventoryFields) || v[0] == nil {
			continue
		}
		n := s.noteShards(heads[i], true, v[7])
		inv := addShard(domain.Inventory{SaleID: id, TenantID: tenantID, Shards: n}, v)
		if n > 1 {
			inv.Total = atoi(v[8])
			for k := 1; k < n; k++ {
				parts = append(parts, s.shardKeys(tenantID, id, k).inv)
				partOf = append(partOf, i)
			}
		}
		out[id] = inv
	}
	if len(parts) == 0 {
		return out, nil
	}
	partCmds, err := read(parts)
	if err != nil {
		return nil, err
	}
	for j, cmd := range partCmds {
		id := saleIDs[partOf[j]]
		inv := out[id]
		v := cmd.Val()
		if len(v) != len(inventoryFields) || v[0] == nil {
			inv.RolledBack = true // a shard lost: rebuild the sale
		} else {
			total := inv.Total
			inv = addShard(inv, v)
			inv.Total = total
		}
		out[id] = inv
	}
	return out, nil
}

// addShard adds one shard's fields (inventoryFields) to inv.
func addShard(inv domain.Inventory, v []any) domain.Inventory {
	seq, _ := strconv.ParseInt(str(v[4]), 10, 64)
	inv.Total += atoi(v[0])
	inv.Remaining += atoi(v[1])
	inv.Sold += atoi(v[2])
	inv.Pending += atoi(v[3])
	inv.Seq = max(inv.Seq, seq)
	inv.RolledBack = inv.RolledBack || v[5] != nil || v[6] != nil
	return inv
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
func (s *Inventory) Reserve(ctx context.Context, r domain.Reservation) (_ ports.ReserveResult, err error) {
	defer func() { err = unavailable(err) }()
	var k saleKeys
	reply, err := s.takeStock(ctx, r, true, func(home saleKeys) ([]string, error) {
		k = home
		return reserveScript.Run(ctx, s.rdb, k.reserveKeys(), s.reserveArgs(k, r)...).StringSlice()
	})
	if err != nil {
		return ports.ReserveResult{}, fmt.Errorf("reserve script: %w", err)
	}
	res, gen, err := s.reserveOutcome(r, reply)
	if err == nil {
		res.Remaining, err = s.saleRemaining(ctx, r, res.Remaining)
	}
	switch {
	case err == nil && !res.Duplicate:
		s.accepted(res.Reservation, k, gen)
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
	case "ADMISSION": // a waiting room's sale, and the buyer holds no live admission
		return ports.ReserveResult{}, "", domain.AdmissionRefusal(domain.AdmissionUse(reply[1]))
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
	case "SHORT": // left unresolved (the purchase is answered from its key): as its shard says
		left, _, _ := shortOf(reply, qty, true)
		if left == 0 {
			return domain.SoldOut()
		}
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
func (s *Inventory) Reservation(ctx context.Context, tenantID, saleID, orderID uuid.UUID) (_ domain.Reservation, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	return s.FindReservation(ctx, tenantID, []uuid.UUID{saleID}, orderID)
}

// FindReservation implements ports.InventoryStore: one round trip over every shard of the sales.
func (s *Inventory) FindReservation(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID, orderID uuid.UUID) (_ domain.Reservation, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	type lookup struct {
		sale uuid.UUID
		cmd  *goredis.StringCmd
	}
	var shards [][]saleKeys
	for _, id := range saleIDs {
		ks, err := s.allShards(ctx, tenantID, id)
		if err != nil {
			return domain.Reservation{}, false, err
		}
		shards = append(shards, ks)
	}
	var cmds []lookup
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, ks := range shards {
			for _, k := range ks {
				cmds = append(cmds, lookup{saleIDs[i], p.HGet(ctx, k.res, orderID.String())})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return domain.Reservation{}, false, fmt.Errorf("find reservation: %w", err)
	}
	for _, c := range cmds {
		if c.cmd.Err() == nil {
			r, err := decodeReservation(tenantID, c.sale, c.cmd.Val())
			return r, err == nil, err
		}
	}
	return domain.Reservation{}, false, nil
}

// MarkConfirmed implements ports.InventoryStore.
func (s *Inventory) MarkConfirmed(ctx context.Context, r domain.Reservation) (err error) {
	defer func() { err = unavailable(err) }()
	k, _, _, err := s.home(ctx, r)
	if err != nil {
		return fmt.Errorf("confirm reservation: %w", err)
	}
	if err := confirmScript.Run(ctx, s.rdb, []string{k.res, k.awaited, k.inv}, r.OrderID.String()).Err(); err != nil {
		return fmt.Errorf("confirm reservation: %w", err)
	}
	return nil
}

// Release implements ports.InventoryStore.
func (s *Inventory) Release(ctx context.Context, r domain.Reservation) (_ bool, err error) {
	defer func() { err = unavailable(err) }()
	k, _, _, err := s.home(ctx, r)
	if err != nil {
		return false, fmt.Errorf("release reservation: %w", err)
	}
	reply, err := releaseScript.Run(ctx, s.rdb, []string{k.inv, k.buyers, k.res, k.awaited}, r.OrderID.String()).StringSlice()
	if err != nil {
		return false, fmt.Errorf("release reservation: %w", err)
	}
	if reply[0] == "OK" {
		s.undrain(ctx, r.TenantID, r.SaleID)
	}
	return reply[0] == "OK", nil
}

// Rereserve implements ports.InventoryStore.
func (s *Inventory) Rereserve(ctx context.Context, r domain.Reservation) (_ domain.Reservation, err error) {
	defer func() { err = unavailable(err) }()
	reply, err := s.takeStock(ctx, r, false, func(k saleKeys) ([]string, error) {
		return rereserveScript.Run(ctx, s.rdb, []string{k.inv, k.buyers, k.res, k.awaited}, r.OrderID.String()).StringSlice()
	})
	if err != nil {
		return domain.Reservation{}, fmt.Errorf("rereserve script: %w", err)
	}
	if reply[0] != "OK" {
		return domain.Reservation{}, refusal(reply, r.Quantity)
	}
	return decodeReservation(r.TenantID, r.SaleID, reply[1])
}

// Adopt implements ports.InventoryStore, with lua/adopt.lua.
func (s *Inventory) Adopt(ctx context.Context, r domain.Reservation) (_ domain.Reservation, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	reply, err := s.takeStock(ctx, r, false, func(k saleKeys) ([]string, error) {
		return adoptScript.Run(ctx, s.rdb, k.reserveKeys(), r.OrderID.String(), r.UserID.String(), r.Quantity,
			r.IdempotencyKey, r.UnitPriceCents, r.Currency, r.CreatedAt.UnixMilli()).StringSlice()
	})
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

// RestoreSale implements ports.InventoryStore, with lua/restore.lua. A sharded sale is rebuilt
// whole (restoreShards).
func (s *Inventory) RestoreSale(ctx context.Context, sale domain.Sale, orders []domain.Order, high ports.HighWater,
	fence time.Time) (_ ports.Restored, err error) {
	defer func() { err = unavailable(err) }()
	if sale.ShardCount() > 1 {
		return s.restoreShards(ctx, sale, orders, high, fence)
	}
	reply, err := s.restore(ctx, sale, 0, sale.TotalStock, orders, high, fence, uuid.NewString(), "")
	if err != nil {
		return ports.Restored{}, err
	}
	if reply[0] == "BELOW_SOLD" {
		sold, _ := strconv.Atoi(reply[1])
		return ports.Restored{}, domain.StockBelowSold(sale.TotalStock, sold)
	}
	out := ports.Restored{Restored: reply[0] == "OK"}
	if out.Restored {
		if out.Dropped, err = droppedOrders(reply); err != nil {
			return ports.Restored{}, err
		}
	}
	out.Inventory, _, err = s.Inventory(ctx, sale.TenantID, sale.ID)
	return out, err
}

// restore runs restore.lua on shard k of the sale, total bounding what it may hold, with the
// durable orders of its buyers (orders), dropping the pending reservations drop names.
func (s *Inventory) restore(ctx context.Context, sale domain.Sale, k, total int, orders []domain.Order,
	high ports.HighWater, fence time.Time, gen, drop string) ([]string, error) {
	n := sale.ShardCount()
	var fenceMS int64
	if !fence.IsZero() {
		fenceMS = fence.UnixMilli()
	}
	highID := ""
	if high.OrderID != uuid.Nil {
		highID = high.OrderID.String()
	}
	args := make([]any, 0, 14+8*len(orders))
	args = append(args, total, sale.PerUserLimit, sale.StartsAt.UnixMilli(), sale.EndsAt.UnixMilli(),
		sale.PriceCents, sale.Currency, fenceMS, high.Seq, highID, gen, n, k, sale.TotalStock, drop)
	for _, o := range orders {
		if o.Status != domain.OrderConfirmed && o.Status != domain.OrderFailed {
			continue
		}
		args = append(args, o.ID.String(), o.UserID.String(), o.Quantity, o.IdempotencyKey, o.UnitPriceCents,
			o.Currency, o.CreatedAt.UnixMilli(), string(o.Status))
	}
	reply, err := restoreScript.Run(ctx, s.rdb, s.shardKeys(sale.TenantID, sale.ID, k).reserveKeys(), args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("restore script: %w", err)
	}
	return reply, nil
}

func droppedOrders(reply []string) ([]uuid.UUID, error) {
	var out []uuid.UUID
	for _, id := range reply[3:] {
		orderID, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("restore script: dropped order %q: %w", id, err)
		}
		out = append(out, orderID)
	}
	return out, nil
}

// restoreShards rebuilds every shard of a sharded sale, unless the sale is current (it exists,
// no shard is marked, and the shard of high holds it at its number): shard totals move with
// transfers and are kept nowhere else, so one lost shard means its share is unknown. Every
// shard is marked 'rebuilding' first (purchases, transfers and adoptions wait) and its transfers
// dropped (the rebuild counts every unit; one given before, taken after, is refused by the new
// generation). The pending reservations PostgreSQL lacks keep their stock oldest first over the
// whole sale, as far as it goes; then each part is rebuilt with its own buyers' orders and the
// pending reservations kept, holding no spare stock, and the head last with the rest of the
// sale's stock; then the marks go. A crash half-way leaves marks, so the sale reads RolledBack
// and the worker rebuilds it again.
func (s *Inventory) restoreShards(ctx context.Context, sale domain.Sale, orders []domain.Order, high ports.HighWater,
	fence time.Time) (ports.Restored, error) {
	n := sale.ShardCount()
	if cur, current, err := s.current(ctx, sale, high); err != nil || current {
		return ports.Restored{Inventory: cur}, err
	}
	// Each order goes to its buyer's shard, once.
	confirmed, bought, durable := 0, make([]int, n), make(map[string]bool, len(orders))
	byShard := make([][]domain.Order, n)
	for _, o := range orders {
		k := homeShard(o.UserID, n)
		byShard[k] = append(byShard[k], o)
		durable[o.ID.String()] = true
		if o.Status == domain.OrderConfirmed {
			confirmed += o.Quantity
			bought[k] += o.Quantity
		}
	}
	if sale.TotalStock < confirmed {
		return ports.Restored{}, domain.StockBelowSold(sale.TotalStock, confirmed)
	}
	shards := make([]saleKeys, n)
	for k := range shards {
		shards[k] = s.shardKeys(sale.TenantID, sale.ID, k)
	}
	mark := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range shards {
			p.HSet(ctx, k.inv, "rebuilding", mark)
		}
		return nil
	}); err != nil {
		return ports.Restored{}, fmt.Errorf("restore sharded inventory: mark: %w", err)
	}
	recs := make([]*goredis.MapStringStringCmd, n)
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for k, sk := range shards {
			p.Del(ctx, sk.xout, sk.xin)
			recs[k] = p.HGetAll(ctx, sk.res)
		}
		return nil
	}); err != nil {
		return ports.Restored{}, fmt.Errorf("restore sharded inventory: read reservations: %w", err)
	}
	// The pending reservations to keep, oldest first over every shard, as far as the stock goes.
	var pending []reservationRecord
	for _, cmd := range recs {
		for id, raw := range cmd.Val() {
			var rec reservationRecord
			if json.Unmarshal([]byte(raw), &rec) == nil && rec.Status == string(domain.OrderPending) && !durable[id] {
				pending = append(pending, rec)
			}
		}
	}
	slices.SortFunc(pending, func(a, b reservationRecord) int {
		ta, _ := strconv.ParseInt(a.TimeMS, 10, 64)
		tb, _ := strconv.ParseInt(b.TimeMS, 10, 64)
		return cmp.Or(cmp.Compare(ta, tb), strings.Compare(a.OrderID, b.OrderID))
	})
	left, kept, drop := sale.TotalStock-confirmed, make([]int, n), make([][]string, n)
	for _, r := range pending {
		user, _ := uuid.Parse(r.UserID)
		k := homeShard(user, n)
		if r.Quantity <= left {
			left -= r.Quantity
			kept[k] += r.Quantity
		} else {
			drop[k] = append(drop[k], r.OrderID)
		}
	}
	gen, parts := uuid.NewString(), 0 // parts: the units the parts hold, sold and pending
	out := ports.Restored{Restored: true}
	for k := n - 1; k >= 0; k-- {
		total := bought[k] + kept[k]
		if k == 0 {
			total = sale.TotalStock - parts
		}
		reply, err := s.restore(ctx, sale, k, total, byShard[k], high, fence, gen, strings.Join(drop[k], ","))
		if err != nil {
			return ports.Restored{}, err
		}
		if reply[0] != "OK" {
			return ports.Restored{}, fmt.Errorf("restore sharded inventory: shard %d: %q", k, reply)
		}
		held, _ := strconv.Atoi(reply[2])
		parts += held
		dropped, err := droppedOrders(reply)
		if err != nil {
			return ports.Restored{}, err
		}
		out.Dropped = append(out.Dropped, dropped...)
	}
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range shards {
			p.HDel(ctx, k.inv, "rebuilding")
		}
		return nil
	}); err != nil {
		return ports.Restored{}, fmt.Errorf("restore sharded inventory: unmark: %w", err)
	}
	var err error
	out.Inventory, _, err = s.Inventory(ctx, sale.TenantID, sale.ID)
	return out, err
}

// current reports whether a sharded sale's inventory needs no rebuild (see restore.lua's
// CURRENT): it exists, no shard is missing or marked, and the shard of high (its number modulo
// the shards) is numbered at least as far and holds its reservation.
func (s *Inventory) current(ctx context.Context, sale domain.Sale, high ports.HighWater) (domain.Inventory, bool, error) {
	inv, ok, err := s.Inventory(ctx, sale.TenantID, sale.ID)
	if err != nil || !ok || inv.RolledBack {
		return domain.Inventory{}, false, err
	}
	if high.OrderID == uuid.Nil {
		return inv, true, nil
	}
	k := int(high.Seq % int64(sale.ShardCount()))
	seq, err := s.rdb.HGet(ctx, s.shardKeys(sale.TenantID, sale.ID, k).inv, "seq").Int64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return domain.Inventory{}, false, fmt.Errorf("restore sharded inventory: %w", err)
	}
	_, has, err := s.Reservation(ctx, sale.TenantID, sale.ID, high.OrderID)
	return inv, err == nil && has && seq >= high.Seq, err
}

// Fence implements ports.InventoryStore, with lua/fence.lua on every shard.
func (s *Inventory) Fence(ctx context.Context, tenantID, saleID uuid.UUID, until time.Time) (err error) {
	defer func() { err = unavailable(err) }()
	shards, err := s.allShards(ctx, tenantID, saleID)
	if err != nil {
		return fmt.Errorf("fence sale: %w", err)
	}
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range shards {
			fenceScript.Eval(ctx, p, []string{k.inv}, until.UnixMilli())
		}
		return nil
	}); err != nil {
		return fmt.Errorf("fence sale: %w", err)
	}
	return nil
}

// AwaitedReservations implements ports.InventoryStore: the oldest first, over every shard.
func (s *Inventory) AwaitedReservations(ctx context.Context, tenantID, saleID uuid.UUID, before time.Time, limit int) (_ []domain.Reservation, err error) {
	defer func() { err = unavailable(err) }()
	shards, err := s.allShards(ctx, tenantID, saleID)
	if err != nil {
		return nil, fmt.Errorf("awaited reservations: %w", err)
	}
	ids := make([]*goredis.ZSliceCmd, len(shards))
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range shards {
			ids[i] = p.ZRangeByScoreWithScores(ctx, k.awaited, &goredis.ZRangeBy{
				Min: "-inf", Max: strconv.FormatInt(before.UnixMilli(), 10), Count: int64(limit),
			})
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("awaited reservations: %w", err)
	}
	recs := make([]*goredis.SliceCmd, len(shards))
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range shards {
			if z := ids[i].Val(); len(z) > 0 {
				members := make([]string, len(z))
				for j, m := range z {
					members[j] = m.Member.(string)
				}
				recs[i] = p.HMGet(ctx, k.res, members...)
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("awaited reservations: %w", err)
	}
	type awaited struct {
		r     domain.Reservation
		since float64
	}
	var all []awaited
	for i, cmd := range recs {
		if cmd == nil {
			continue
		}
		for j, raw := range cmd.Val() {
			str, ok := raw.(string)
			if !ok {
				continue
			}
			r, err := decodeReservation(tenantID, saleID, str)
			if err != nil {
				return nil, err
			}
			all = append(all, awaited{r, ids[i].Val()[j].Score})
		}
	}
	// The oldest first over every shard (each shard's are in order already).
	slices.SortStableFunc(all, func(a, b awaited) int { return cmp.Compare(a.since, b.since) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([]domain.Reservation, len(all))
	for i, a := range all {
		out[i] = a.r
	}
	return out, nil
}
