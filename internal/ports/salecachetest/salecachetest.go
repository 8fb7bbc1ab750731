// Package salecachetest is the contract of ports.SaleCache: a miss until filled, copies scoped by
// tenant, a fill that never overwrites an entry, a replacement that always does. Every
// implementation runs it (Redis, under a key prefix of its own; the in-memory cache).
package salecachetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Run runs the contract against the cache newCache returns.
func Run(t *testing.T, newCache func(t *testing.T) ports.SaleCache) {
	t.Run("FillReplaceAndScope", func(t *testing.T) {
		t.Parallel()
		testFillReplaceAndScope(t, newCache(t))
	})
}

func testFillReplaceAndScope(t *testing.T, c ports.SaleCache) {
	ctx := context.Background()
	cached := func(s domain.Sale) (domain.Sale, bool) {
		t.Helper()
		got, ok, err := c.CachedSale(ctx, s.TenantID, s.ID)
		if err != nil {
			t.Fatalf("CachedSale: %v", err)
		}
		return got, ok
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	v1 := domain.Sale{
		ID: uuid.New(), TenantID: uuid.New(), Name: "Spring drop", PriceCents: 1999, Currency: "EUR",
		TotalStock: 100, PerUserLimit: 2, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour),
		CreatedAt: now, UpdatedAt: now,
	}

	if got, ok := cached(v1); ok {
		t.Fatalf("empty cache hit: %+v", got)
	}
	if err := c.FillSale(ctx, v1); err != nil {
		t.Fatalf("FillSale: %v", err)
	}
	if got, ok := cached(v1); !ok || got != v1 {
		t.Fatalf("after FillSale: %+v ok=%v, want %+v", got, ok, v1)
	}

	// Scoped by tenant: the same sale id under another tenant is a miss.
	other := v1
	other.TenantID = uuid.New()
	if got, ok := cached(other); ok {
		t.Fatalf("other tenant hit: %+v", got)
	}

	// A reader holding an older copy does not overwrite the cached one.
	stale := v1
	stale.Name, stale.TotalStock = "stale", 1
	if err := c.FillSale(ctx, stale); err != nil {
		t.Fatalf("FillSale(stale): %v", err)
	}
	if got, _ := cached(v1); got != v1 {
		t.Fatalf("FillSale overwrote the entry: %+v, want %+v", got, v1)
	}

	// An admin's change replaces it at once.
	v2 := v1
	v2.Name, v2.PriceCents, v2.TotalStock, v2.UpdatedAt = "Spring drop (extended)", 1499, 150, now.Add(time.Minute)
	if err := c.ReplaceSale(ctx, v2); err != nil {
		t.Fatalf("ReplaceSale: %v", err)
	}
	if got, ok := cached(v1); !ok || got != v2 {
		t.Fatalf("after ReplaceSale: %+v ok=%v, want %+v", got, ok, v2)
	}

	// ReplaceSale also fills a miss.
	v3 := v1
	v3.ID = uuid.New()
	if err := c.ReplaceSale(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if got, ok := cached(v3); !ok || got != v3 {
		t.Fatalf("ReplaceSale on a miss: %+v ok=%v", got, ok)
	}
}
