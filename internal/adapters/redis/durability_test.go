package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// REDIS_DURABILITY=replica: a reservation no replica acknowledged in time is not accepted
// (503), and leaves nothing behind: stock, allowance and key as before. With a replica
// connected the same purchase is accepted, and the replica holds it.
func TestPurchaseWaitsForAReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := testutil.StartRedisServer(t)
	inv := redisadapter.NewInventory(primary.Client, "fs")
	purchases := redisadapter.NewPurchases(inv, redisadapter.Wait{Replicas: 1, Timeout: 100 * time.Millisecond})
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	sale := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "s", PriceCents: 100, Currency: "EUR",
		TotalStock: 5, PerUserLimit: 2, StartsAt: start, EndsAt: start.Add(time.Hour)}
	if _, err := inv.SyncSale(ctx, sale, 0); err != nil {
		t.Fatal(err)
	}
	user := uuid.New()
	p := ports.Purchase{Scope: ports.IdempotencyScope{TenantID: sale.TenantID, UserID: user, Key: "k"}, Fingerprint: "fp",
		Lease: 30 * time.Second, TTL: time.Hour, Reservation: domain.Reservation{OrderID: uuid.New(), TenantID: sale.TenantID,
			SaleID: sale.ID, UserID: user, Quantity: 2, IdempotencyKey: "k"}}

	for range 2 { // twice: the first left the key free
		out, err := purchases.Purchase(ctx, p)
		if !errors.Is(err, domain.ErrUnavailable) || out.Known != nil {
			t.Fatalf("Purchase without a replica = %+v, %v; want ErrUnavailable", out, err)
		}
	}
	if got, _, _ := inv.Inventory(ctx, sale.TenantID, sale.ID); got.Remaining != 5 || got.Sold != 0 || got.Pending != 0 {
		t.Fatalf("inventory after refused purchases = %+v, want untouched", got)
	}
	if _, ok, _ := inv.Reservation(ctx, sale.TenantID, sale.ID, p.Reservation.OrderID); ok {
		t.Fatal("a reservation no replica acknowledged was kept")
	}

	replica := primary.StartReplica(t)
	// A replica on a loaded machine may take a while to acknowledge: wait longer this time.
	patient := redisadapter.NewPurchases(inv, redisadapter.Wait{Replicas: 1, Timeout: 5 * time.Second})
	out, err := patient.Purchase(ctx, p)
	if err != nil || out.Known != nil || out.Reserved.Reservation.OrderID != p.Reservation.OrderID {
		t.Fatalf("Purchase with a replica = %+v, %v; want it accepted", out, err)
	}
	onReplica := redisadapter.NewInventory(replica.Client, "fs")
	if r, ok, err := onReplica.Reservation(ctx, sale.TenantID, sale.ID, p.Reservation.OrderID); err != nil || !ok || r.Quantity != 2 {
		t.Fatalf("replica holds %+v, %v, %v; want the reservation the 202 stood for", r, ok, err)
	}
}

// REDIS_DURABILITY=aof is refused at start unless Redis fsyncs every write.
func TestCheckAOF(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, false},
		{[]string{"--appendonly", "yes", "--appendfsync", "everysec"}, false},
		{[]string{"--appendonly", "yes", "--appendfsync", "always"}, true},
	} {
		s := testutil.StartRedisServer(t, tc.args...)
		if err := redisadapter.CheckAOF(ctx, s.Client); (err == nil) != tc.ok {
			t.Errorf("CheckAOF with %v = %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}

// On a cluster REDIS_DURABILITY=aof needs every master to fsync every write: one that does not
// is named.
func TestCheckAOFOnEveryMaster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	always := []string{"--appendonly", "yes", "--appendfsync", "always"}
	nodes := testutil.StartRedisCluster(t, always, always, []string{"--appendonly", "yes", "--appendfsync", "everysec"})
	rdb, err := redisadapter.Open(ctx, "redis://"+nodes[0].Addr+"?addr="+nodes[1].Addr+"&addr="+nodes[2].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := redisadapter.CheckAOF(ctx, rdb); err == nil || !strings.Contains(err.Error(), nodes[2].Addr) {
		t.Fatalf("CheckAOF with %s on everysec = %v, want it named", nodes[2].Addr, err)
	}
	if err := nodes[2].Client.ConfigSet(ctx, "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	if err := redisadapter.CheckAOF(ctx, rdb); err != nil {
		t.Fatalf("CheckAOF with every master on always = %v", err)
	}
}
