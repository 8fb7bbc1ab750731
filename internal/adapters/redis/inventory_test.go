package redis_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// The behaviour of the inventory is checked by the ports.InventoryStore contract
// (inventory_contract_test.go runs internal/ports/inventorytest against this adapter). The tests
// here check what the port cannot see: the keys and hashes the Lua scripts share.

// fixture is one test's private inventory on the shared Redis.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	rdb    goredis.UniversalClient
	prefix string
	inv    *redisadapter.Inventory
	tenant uuid.UUID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	r := testutil.NewRedis(t)
	return &fixture{
		t: t, ctx: context.Background(), rdb: r.Client, prefix: r.Prefix,
		inv: redisadapter.NewInventory(r.Client, r.Prefix).FenceOnLoss(300 * time.Millisecond), tenant: uuid.New(),
	}
}

// liveSale is a sale that started a minute ago and lasts an hour, synced.
func (f *fixture) liveSale(total, limit int) domain.Sale {
	f.t.Helper()
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	s := domain.Sale{
		ID: uuid.New(), TenantID: f.tenant, Name: "sale", PriceCents: 1999, Currency: "EUR",
		TotalStock: total, PerUserLimit: limit, StartsAt: start, EndsAt: start.Add(time.Hour),
	}
	if _, err := f.inv.SyncSale(f.ctx, s, 0); err != nil {
		f.t.Fatalf("SyncSale: %v", err)
	}
	return s
}

// reserve reserves and fails the test unless the reservation is accepted.
func (f *fixture) reserve(s domain.Sale, user uuid.UUID, qty int, key string) domain.Reservation {
	f.t.Helper()
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, user, qty, key))
	if err != nil || res.Duplicate {
		f.t.Fatalf("Reserve(user %s, qty %d, key %q) = %+v, %v", user, qty, key, res, err)
	}
	return res.Reservation
}

func (f *fixture) reservation(s domain.Sale, user uuid.UUID, qty int, key string) domain.Reservation {
	return domain.Reservation{
		OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: user, Quantity: qty, IdempotencyKey: key,
	}
}

// inventoryHash is the sale's inventory hash, laid out as documented in lua/reserve.lua.
func (f *fixture) inventoryHash(s domain.Sale) map[string]string {
	f.t.Helper()
	h, err := f.rdb.HGetAll(f.ctx, f.saleKeys(s)[0]).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// TestInventoryHashHoldsWhatTheScriptsNeed: SyncSale writes exactly the fields the scripts read.
func TestInventoryHashHoldsWhatTheScriptsNeed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.liveSale(50, 3)
	want := map[string]string{
		"total": "50", "remaining": "50", "sold": "0", "pending": "0", "limit": "3",
		"starts": fmt.Sprint(s.StartsAt.UnixMilli()), "ends": fmt.Sprint(s.EndsAt.UnixMilli()),
		"price": "1999", "currency": "EUR",
	}
	if h := f.inventoryHash(s); fmt.Sprint(h) != fmt.Sprint(want) {
		t.Fatalf("inventory hash = %v, want %v", h, want)
	}
}

// TestRefusedSyncSaleLeavesTheHashAsItWas: a SyncSale refused (stock below the units sold)
// changes no field at all, not only the ones the port reports.
func TestRefusedSyncSaleLeavesTheHashAsItWas(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.liveSale(10, 5)
	f.reserve(s, uuid.New(), 3, "k1")
	before := f.inventoryHash(s)
	bad := s
	bad.TotalStock, bad.PerUserLimit, bad.PriceCents, bad.EndsAt = 2, 1, 1, s.EndsAt.Add(time.Hour)
	if _, err := f.inv.SyncSale(f.ctx, bad, 0); !errors.Is(err, domain.ErrStockBelowSold) {
		t.Fatalf("SyncSale below the units sold: %v, want %v", err, domain.ErrStockBelowSold)
	}
	if after := f.inventoryHash(s); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused SyncSale changed the inventory: %v -> %v", before, after)
	}
}

// TestSaleKeysShareOneHashTag: each script touches one sale's keys only; they must share one
// {hash tag} (one cluster slot) and all live under the prefix.
func TestSaleKeysShareOneHashTag(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sales := []domain.Sale{f.liveSale(10, 5), f.liveSale(10, 5)}
	for _, s := range sales {
		r := f.reserve(s, uuid.New(), 1, "k1")
		f.reserve(s, uuid.New(), 1, "k2")
		if err := f.inv.MarkConfirmed(f.ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	keys := testutil.Keys(f.ctx, f.rdb, f.prefix+":*")
	tagRe := regexp.MustCompile(`\{[^}]*\}`)
	byTag := map[string][]string{}
	for _, k := range keys {
		if !strings.HasPrefix(k, f.prefix+":") {
			t.Errorf("key %q is outside the prefix %q", k, f.prefix)
		}
		tags := tagRe.FindAllString(k, -1)
		if len(tags) != 1 {
			t.Errorf("key %q has %d hash tags, want 1", k, len(tags))
			continue
		}
		byTag[tags[0]] = append(byTag[tags[0]], strings.TrimPrefix(k, f.prefix+":"+tags[0]+":"))
	}
	if len(byTag) != len(sales) {
		t.Fatalf("keys %v use %d hash tags, want one per sale (%d)", keys, len(byTag), len(sales))
	}
	for _, s := range sales {
		tag := "{" + f.tenant.String() + ":" + s.ID.String() + "}"
		names := byTag[tag]
		sort.Strings(names)
		if want := []string{"awaited", "buyers", "inv", "keys", "res"}; fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("sale %s has keys %v under %s, want %v", s.ID, names, tag, want)
		}
	}
}

// A Redis that rolls back (restarted from an older file, a replica promoted behind) still has
// the sale, with more stock than it sold. The API node that had accepted a reservation the store
// lost refuses its next purchase and marks the inventory, even after other nodes' purchases
// reused the lost numbers; a node that saw none (started after the rollback) is stopped by the
// mark, or, before it, by the worker's check against PostgreSQL's high-water mark
// (app.Stock.Check). RestoreSale rebuilds the inventory and the mark goes.
func TestReserveRefusesARolledBackInventory(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.liveSale(5, 5)
	keptBy := uuid.New()
	f.reserve(s, keptBy, 1, "kept")
	keys := f.saleKeys(s)
	dumps := make([]string, len(keys))
	for i, k := range keys {
		dumps[i], _ = f.rdb.Dump(f.ctx, k).Result() // "" for a key that does not exist yet
	}
	lost := f.reserve(s, uuid.New(), 2, "lost")
	other := redisadapter.NewInventory(f.rdb, f.prefix).FenceOnLoss(300 * time.Millisecond) // a second API node, its last order lost too
	if _, err := other.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "other")); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys { // the rollback: every key of the sale back to its copy
		f.rdb.Del(f.ctx, k)
		if dumps[i] != "" {
			if err := f.rdb.Restore(f.ctx, k, 0, dumps[i]).Err(); err != nil {
				t.Fatalf("restore %s: %v", k, err)
			}
		}
	}
	fresh := redisadapter.NewInventory(f.rdb, f.prefix).FenceOnLoss(300 * time.Millisecond) // an API node started after the rollback
	if _, err := fresh.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "fresh")); err != nil {
		t.Fatalf("Reserve on a node that saw no number: %v, want it accepted (the worker's check catches the rollback)", err)
	}
	// Even a key already used (its answer a replay) tells this node of the loss at once.
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, keptBy, 1, "kept")); !errors.Is(err, ports.ErrRolledBack) {
		t.Fatalf("Reserve after a rollback: %v, want ErrRolledBack", err)
	}
	inv, _, err := fresh.Inventory(f.ctx, s.TenantID, s.ID)
	if err != nil || !inv.RolledBack {
		t.Fatalf("inventory after a refused purchase: %+v, %v; want it marked rolled back", inv, err)
	}
	if _, err := fresh.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "marked")); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Reserve on any node once marked: %v, want ErrUnavailable", err)
	}
	if _, _, err := fresh.Adopt(f.ctx, f.reservation(s, uuid.New(), 1, "adopt")); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Adopt into a marked inventory: %v, want ErrUnavailable", err)
	}
	// The worker wrote the lost order: the rebuild counts it; the marked inventory was behind.
	o := lost.Order()
	o.Status = domain.OrderConfirmed
	out, err := f.inv.RestoreSale(f.ctx, s, []domain.Order{o}, ports.HighWater{Seq: lost.Seq, OrderID: lost.OrderID}, time.Time{})
	if err != nil || !out.Restored || out.Inventory.RolledBack || out.Inventory.Sold != 4 || out.Inventory.Remaining != 1 {
		t.Fatalf("RestoreSale = %+v, %v; want 4 of 5 sold (kept, fresh, lost), unmarked", out, err)
	}
	// Every node whose floor dates from before the rebuild is told once (the orders it accepted
	// may be among those lost: it takes them again, app.PlaceOrderHandler), without marking the
	// rebuilt inventory; then it buys as before.
	for name, node := range map[string]*redisadapter.Inventory{"other": other, "fresh": fresh} {
		if _, err := node.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "told")); !errors.Is(err, ports.ErrRolledBack) {
			t.Fatalf("%s: Reserve with a floor from before the rebuild: %v, want ErrRolledBack", name, err)
		}
	}
	if inv, _, _ := f.inv.Inventory(f.ctx, s.TenantID, s.ID); inv.RolledBack {
		t.Fatal("a floor from before the rebuild marked the rebuilt inventory rolled back")
	}
	// Learning of it, a node fences the sale first (FenceOnLoss), so that purchases racing with
	// it cannot take the stock of the orders it is about to take again.
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "racing")); !errors.Is(err, domain.ErrUnavailable) ||
		errors.Is(err, ports.ErrRolledBack) {
		t.Fatalf("Reserve as a node learns of a loss: %v, want fenced", err)
	}
	time.Sleep(350 * time.Millisecond)
	f.reserve(s, uuid.New(), 1, "rebuilt") // f.inv was told when it marked the inventory
	if _, err := other.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "sold out")); !errors.Is(err, domain.ErrSoldOut) {
		t.Fatalf("Reserve once told: %v, want sold out", err)
	}
}

// saleKeys are the Redis keys of s's inventory, as the scripts name them.
func (f *fixture) saleKeys(s domain.Sale) []string {
	base := f.prefix + ":{" + s.TenantID.String() + ":" + s.ID.String() + "}:"
	return []string{base + "inv", base + "buyers", base + "keys", base + "res", base + "awaited"}
}
