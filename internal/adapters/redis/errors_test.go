package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// A Redis that cannot answer now, saturated (no pooled connection within the pool timeout) or
// gone, fails a purchase as unavailable (503 with Retry-After), never as an internal error; and
// takes no stock.
func TestPurchaseOnASaturatedOrLostRedisIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	server := testutil.StartRedisServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: server.Addr, PoolSize: 1, PoolTimeout: 50 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	inv := redisadapter.NewInventory(client, "fs")
	purchases := redisadapter.NewPurchases(inv, redisadapter.Wait{})
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	sale := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "s", PriceCents: 100, Currency: "EUR",
		TotalStock: 5, PerUserLimit: 2, StartsAt: start, EndsAt: start.Add(time.Hour)}
	if _, err := inv.SyncSale(ctx, sale, 0); err != nil {
		t.Fatal(err)
	}
	user := uuid.New()
	p := ports.Purchase{Scope: ports.IdempotencyScope{TenantID: sale.TenantID, UserID: user, Key: "k"}, Fingerprint: "fp",
		Lease: 30 * time.Second, TTL: time.Hour, Reservation: domain.Reservation{OrderID: uuid.New(), TenantID: sale.TenantID,
			SaleID: sale.ID, UserID: user, Quantity: 1, IdempotencyKey: "k"}}

	// The pool's one connection is busy for a second.
	busy := make(chan error, 1)
	go func() { busy <- client.BLPop(ctx, time.Second, "fs:nothing").Err() }()
	testutil.WaitFor(t, 5*time.Second, "the pool's connection to be taken", func() bool { return client.PoolStats().IdleConns == 0 && client.PoolStats().TotalConns == 1 })
	time.Sleep(50 * time.Millisecond)
	_, err := purchases.Purchase(ctx, p)
	if !errors.Is(err, domain.ErrUnavailable) || !errors.Is(err, goredis.ErrPoolTimeout) {
		t.Fatalf("Purchase with the pool saturated = %v; want ErrUnavailable (pool timeout)", err)
	}
	if err := <-busy; !errors.Is(err, goredis.Nil) {
		t.Fatal(err)
	}
	if got, _, _ := inv.Inventory(ctx, sale.TenantID, sale.ID); got.Remaining != 5 {
		t.Fatalf("remaining after the refused purchase %d, want 5", got.Remaining)
	}

	gone := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = gone.Close() })
	_, err = redisadapter.NewPurchases(redisadapter.NewInventory(gone, "fs"), redisadapter.Wait{}).Purchase(ctx, p)
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Purchase on an unreachable Redis = %v; want ErrUnavailable", err)
	}
	// The session check and the rate limit of every request, too.
	gate := redisadapter.NewGate(gone, "fs", redisadapter.NewSessions(gone, "fs"))
	if _, err := gate.Check(ctx, "purchase:127.0.0.1", 60, uuid.New()); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Gate.Check on an unreachable Redis = %v; want ErrUnavailable", err)
	}

	if err := purchases.Forget(ctx, p.Scope); err != nil { // as the purchase use-case does after a failure
		t.Fatal(err)
	}
	out, err := purchases.Purchase(ctx, p)
	if err != nil || out.Reserved.Reservation.OrderID != p.Reservation.OrderID {
		t.Fatalf("Purchase once the pool is free = %+v, %v; want it accepted", out, err)
	}
}

// Every Redis store answers unavailable (503 with Retry-After) on a Redis it cannot reach, not
// an internal error: logins (sessions), the sale cache, WebSocket tickets, the inventory reads.
func TestStoresOnALostRedisAreUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gone := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = gone.Close() })
	id, tenant := uuid.New(), uuid.New()
	sessions := redisadapter.NewSessions(gone, "fs")
	cache := redisadapter.NewSaleCache(gone, "fs", time.Minute)
	tickets := redisadapter.NewTickets(gone, "fs")
	inv := redisadapter.NewInventory(gone, "fs")
	for name, call := range map[string]func() error{
		"CreateSession": func() error {
			return sessions.CreateSession(ctx, domain.Session{ID: id, TenantID: tenant, UserID: id}, "h", time.Minute)
		},
		"SessionActive": func() error { _, err := sessions.SessionActive(ctx, id); return err },
		"CachedSale":    func() error { _, _, err := cache.CachedSale(ctx, tenant, id); return err },
		"IssueTicket": func() error {
			_, err := tickets.IssueTicket(ctx, domain.Principal{UserID: id, TenantID: tenant}, time.Minute)
			return err
		},
		"Inventories": func() error { _, err := inv.Inventories(ctx, tenant, []uuid.UUID{id}); return err },
	} {
		if err := call(); !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s on an unreachable Redis = %v; want ErrUnavailable", name, err)
		}
	}
}
