package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/ports/salecachetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestSaleCacheContract runs the ports.SaleCache contract against the Redis cache.
func TestSaleCacheContract(t *testing.T) {
	t.Parallel()
	salecachetest.Run(t, func(t *testing.T) ports.SaleCache {
		r := testutil.NewRedis(t)
		return redisadapter.NewSaleCache(r.Client, r.Prefix, 10*time.Minute)
	})
}

// The entry is one key under the prefix, with the TTL safety net set by a fill and by a
// replacement.
func TestSaleCacheKeyAndTTL(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	ctx := context.Background()
	const ttl = 10 * time.Minute
	c := redisadapter.NewSaleCache(r.Client, r.Prefix, ttl)
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "Spring drop", PriceCents: 1999, Currency: "EUR",
		TotalStock: 100, PerUserLimit: 2, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), CreatedAt: now, UpdatedAt: now}
	for name, write := range map[string]func(context.Context, domain.Sale) error{"FillSale": c.FillSale, "ReplaceSale": c.ReplaceSale} {
		if err := write(ctx, s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		keys := testutil.Keys(ctx, r.Client, r.Prefix+":*")
		if len(keys) != 1 {
			t.Fatalf("after %s keys = %v, want one under the prefix", name, keys)
		}
		if got := r.Client.PTTL(ctx, keys[0]).Val(); got <= 0 || got > ttl {
			t.Fatalf("TTL after %s = %v, want within (0, %v]", name, got, ttl)
		}
	}
}
