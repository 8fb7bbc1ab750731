package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

func cachedSale(t *testing.T, c *redisadapter.SaleCache, s domain.Sale) (domain.Sale, bool) {
	t.Helper()
	got, ok, err := c.CachedSale(context.Background(), s.TenantID, s.ID)
	if err != nil {
		t.Fatalf("CachedSale: %v", err)
	}
	return got, ok
}

func TestSaleCache(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	ctx := context.Background()
	const ttl = 10 * time.Minute
	c := redisadapter.NewSaleCache(r.Client, r.Prefix, ttl)
	now := time.Now().UTC().Truncate(time.Microsecond)
	v1 := domain.Sale{
		ID: uuid.New(), TenantID: uuid.New(), Name: "Spring drop", PriceCents: 1999, Currency: "EUR",
		TotalStock: 100, PerUserLimit: 2, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour),
		CreatedAt: now, UpdatedAt: now,
	}

	if got, ok := cachedSale(t, c, v1); ok {
		t.Fatalf("empty cache hit: %+v", got)
	}
	if err := c.FillSale(ctx, v1); err != nil {
		t.Fatalf("FillSale: %v", err)
	}
	if got, ok := cachedSale(t, c, v1); !ok || got != v1 {
		t.Fatalf("after FillSale: %+v ok=%v, want %+v", got, ok, v1)
	}
	keys := testutil.Keys(ctx, r.Client, r.Prefix+":*")
	if len(keys) != 1 {
		t.Fatalf("keys = %v, want one under the prefix", keys)
	}
	if got := r.Client.PTTL(ctx, keys[0]).Val(); got <= 0 || got > ttl {
		t.Fatalf("cache TTL = %v, want within (0, %v]", got, ttl)
	}

	// Scoped by tenant: the same sale id under another tenant is a miss.
	other := v1
	other.TenantID = uuid.New()
	if got, ok := cachedSale(t, c, other); ok {
		t.Fatalf("other tenant hit: %+v", got)
	}

	// A reader holding an older copy does not overwrite the cached one.
	stale := v1
	stale.Name, stale.TotalStock = "stale", 1
	if err := c.FillSale(ctx, stale); err != nil {
		t.Fatalf("FillSale(stale): %v", err)
	}
	if got, _ := cachedSale(t, c, v1); got != v1 {
		t.Fatalf("FillSale overwrote the entry: %+v, want %+v", got, v1)
	}

	// An admin's change replaces it at once.
	v2 := v1
	v2.Name, v2.PriceCents, v2.TotalStock, v2.UpdatedAt = "Spring drop (extended)", 1499, 150, now.Add(time.Minute)
	if err := c.ReplaceSale(ctx, v2); err != nil {
		t.Fatalf("ReplaceSale: %v", err)
	}
	if got, ok := cachedSale(t, c, v1); !ok || got != v2 {
		t.Fatalf("after ReplaceSale: %+v ok=%v, want %+v", got, ok, v2)
	}
	if got := r.Client.PTTL(ctx, keys[0]).Val(); got <= 0 || got > ttl {
		t.Fatalf("TTL after ReplaceSale = %v, want within (0, %v]", got, ttl)
	}

	// ReplaceSale also fills a miss.
	v3 := v1
	v3.ID = uuid.New()
	if err := c.ReplaceSale(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if got, ok := cachedSale(t, c, v3); !ok || got != v3 {
		t.Fatalf("ReplaceSale on a miss: %+v ok=%v", got, ok)
	}
}
