package redis_test

import (
	"fmt"
	"testing"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/ports/inventorytest"
	"github.com/flashsale/flashsale/internal/ports/purchasetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestInventoryContract runs the ports.InventoryStore contract against the Lua-script
// inventory, each test under its own key prefix on the shared Redis: with every sale in one
// shard, and split into 8 (domain.Sale.Shards).
func TestInventoryContract(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 8} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			t.Parallel()
			inventorytest.Run(t, func(t *testing.T) ports.InventoryStore {
				r := testutil.NewRedis(t)
				// No fence of its own on learning of a loss: the contract sets the fences it
				// checks (TestReserveRefusesARolledBackInventory checks this one).
				return redisadapter.NewInventory(r.Client, r.Prefix).FenceOnLoss(0)
			}, inventorytest.Options{Shards: shards})
		})
	}
}

// TestPurchaseContract runs the ports.PurchaseStore contract against the claim and the
// reservation script in one pipeline, each test under its own key prefix: with every sale in
// one shard, and split into 8.
func TestPurchaseContract(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 8} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			t.Parallel()
			purchasetest.RunSharded(t, func(t *testing.T) purchasetest.Store {
				r := testutil.NewRedis(t)
				inv := redisadapter.NewInventory(r.Client, r.Prefix)
				return purchasetest.Store{Inventory: inv, Purchases: redisadapter.NewPurchases(inv, redisadapter.Wait{})}
			}, shards)
		})
	}
}
