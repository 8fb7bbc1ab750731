package redis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// BenchmarkReserve is the reservation script on the real Redis: one round trip that checks the
// window, the key, the limit and the stock and records the reservation. Parallel, like a sale.
func BenchmarkReserve(b *testing.B) {
	r := testutil.NewRedis(b)
	inv := redis.NewInventory(r.Client, r.Prefix)
	ctx := context.Background()
	now := time.Now()
	sale := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "bench", PriceCents: 100, Currency: "EUR",
		TotalStock: 100_000_000, PerUserLimit: 1_000_000, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)}
	if _, err := inv.SyncSale(ctx, sale, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16) // many requests in flight, as in a sale
	b.RunParallel(func(pb *testing.PB) {
		user := uuid.New()
		for i := 0; pb.Next(); i++ {
			_, err := inv.Reserve(ctx, domain.Reservation{OrderID: uuid.New(), TenantID: sale.TenantID, SaleID: sale.ID,
				UserID: user, Quantity: 1, IdempotencyKey: "k" + strconv.Itoa(i)})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
