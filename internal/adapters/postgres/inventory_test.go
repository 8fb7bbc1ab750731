package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/ports/inventorytest"
	"github.com/flashsale/flashsale/internal/ports/purchasetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestInventoryContract runs the ports.InventoryStore contract against the row-locking
// baseline. The cases share one fresh database (each has its own tenant and sales, as the Redis
// cases share one server) rather than one each. Every call holds a connection for its
// transaction, queued on the sale's row lock: the racing cases wait for the pool's 20
// connections, so they race a moderate 300 reservations.
func TestInventoryContract(t *testing.T) {
	t.Parallel()
	pool, _ := testutil.NewPool(t, 20)
	inv := postgres.NewInventory(pool)
	inventorytest.Run(t, func(*testing.T) ports.InventoryStore { return inv }, inventorytest.Options{Racers: 300, Unnumbered: true})
}

// TestPurchaseContract runs the ports.PurchaseStore contract against the baseline: the claim in
// pg_idempotency and the reservation in one transaction.
func TestPurchaseContract(t *testing.T) {
	t.Parallel()
	pool, _ := testutil.NewPool(t, 20)
	inv := postgres.NewInventory(pool)
	purchasetest.Run(t, func(*testing.T) purchasetest.Store { return purchasetest.Store{Inventory: inv, Purchases: inv} })
}

// TestSystemOnTheRowLockingInventory: with INVENTORY_BACKEND=postgres the whole system sells from
// pg_inventory (one binding for the port, no one-round-trip Redis purchase beside it) and the
// worker confirms the orders there; Redis holds no stock.
func TestSystemOnTheRowLockingInventory(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Configure: func(c *config.Config) {
		c.InventoryBackend = config.InventoryPostgres
	}})
	purchases := sys.App.PlaceOrder.Purchases
	if w, ok := purchases.(interface{ Unwrap() ports.PurchaseStore }); ok { // timed for the metrics
		purchases = w.Unwrap()
	}
	if _, ok := purchases.(*postgres.Inventory); !ok {
		t.Fatalf("purchases go through %T, want the row-locking inventory", purchases)
	}
	ctx := context.Background()
	sale := sys.CreateSale(t, 5, 2, -time.Minute, time.Hour).Sale
	buyer := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	p := domain.Principal{UserID: buyer.ID, TenantID: buyer.TenantID, Role: domain.RoleShopper}

	res, err := sys.App.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: p, SaleID: sale.ID, Quantity: 2, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	_, err = sys.App.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: p, SaleID: sale.ID, Quantity: 1, IdempotencyKey: "k2"})
	if !errors.Is(err, domain.ErrPurchaseLimitExceeded) {
		t.Fatalf("order over the limit: %v, want %v", err, domain.ErrPurchaseLimitExceeded)
	}

	var remaining, sold int
	err = sys.Pool.QueryRow(ctx, "SELECT remaining, sold FROM pg_inventory WHERE tenant_id = $1 AND sale_id = $2",
		sale.TenantID, sale.ID).Scan(&remaining, &sold)
	if err != nil || remaining != 3 || sold != 2 {
		t.Fatalf("pg_inventory: remaining %d sold %d (%v), want 3 and 2", remaining, sold, err)
	}
	if keys := testutil.Keys(ctx, sys.Redis, sys.Config.RedisPrefix+":{"+sale.TenantID.String()+":"+sale.ID.String()+"}:*"); len(keys) != 0 {
		t.Fatalf("Redis holds inventory keys %v", keys)
	}
	testutil.WaitFor(t, 15*time.Second, "the order confirmed in the inventory", func() bool {
		var status string
		err := sys.Pool.QueryRow(ctx, "SELECT status FROM pg_reservations WHERE order_id = $1", res.Order.ID).Scan(&status)
		return err == nil && status == string(domain.OrderConfirmed)
	})
	o, err := sys.App.GetOrder.Handle(ctx, p, res.Order.ID)
	if err != nil || o.Status != domain.OrderConfirmed || o.Quantity != 2 {
		t.Fatalf("GetOrder = %+v, %v, want confirmed", o, err)
	}
}
