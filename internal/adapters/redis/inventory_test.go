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
		inv: redisadapter.NewInventory(r.Client, r.Prefix), tenant: uuid.New(),
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
	res, err := f.inv.Reserve(f.ctx, domain.Reservation{
		OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: user, Quantity: qty, IdempotencyKey: key,
	})
	if err != nil || res.Duplicate {
		f.t.Fatalf("Reserve(user %s, qty %d, key %q) = %+v, %v", user, qty, key, res, err)
	}
	return res.Reservation
}

// inventoryHash is the sale's inventory hash, laid out as documented in lua/reserve.lua.
func (f *fixture) inventoryHash(s domain.Sale) map[string]string {
	f.t.Helper()
	h, err := f.rdb.HGetAll(f.ctx, f.prefix+":{"+s.TenantID.String()+":"+s.ID.String()+"}:inv").Result()
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
