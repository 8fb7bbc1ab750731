package redis_test

import (
	"testing"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/ports/inventorytest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestInventoryContract runs the ports.InventoryStore contract against the Lua-script
// inventory, each test under its own key prefix on the shared Redis.
func TestInventoryContract(t *testing.T) {
	t.Parallel()
	inventorytest.Run(t, func(t *testing.T) ports.InventoryStore {
		r := testutil.NewRedis(t)
		return redisadapter.NewInventory(r.Client, r.Prefix)
	}, inventorytest.Options{})
}
