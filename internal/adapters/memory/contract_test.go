package memory_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/adapters/memory"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/ports/inventorytest"
	"github.com/flashsale/flashsale/internal/ports/purchasetest"
	"github.com/flashsale/flashsale/internal/ports/salecachetest"
	"github.com/flashsale/flashsale/internal/ports/sessiontest"
	"github.com/flashsale/flashsale/internal/ports/storetest"
)

// The in-memory stores pass the same contracts as Redis and PostgreSQL: the use-case tests that
// run on them rely on nothing the real stores do not do.

func TestInventoryContract(t *testing.T) {
	t.Parallel()
	inventorytest.Run(t, func(*testing.T) ports.InventoryStore { return memory.NewInventory(nil) }, inventorytest.Options{})
}

func TestPurchaseContract(t *testing.T) {
	t.Parallel()
	purchasetest.Run(t, func(*testing.T) purchasetest.Store {
		inv := memory.NewInventory(nil)
		return purchasetest.Store{Inventory: inv, Purchases: inv}
	})
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.NewStore(nil) })
}

func TestSessionContract(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(*testing.T) ports.SessionStore { return memory.NewSessions(nil) })
}

func TestSaleCacheContract(t *testing.T) {
	t.Parallel()
	salecachetest.Run(t, func(*testing.T) ports.SaleCache { return memory.NewSaleCache() })
}
