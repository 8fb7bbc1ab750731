package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestSoldOutAcrossNodes: the sale sells out through node B; node A learns it from B's live
// event and answers its purchases from memory (nothing stored in Redis for their keys), still
// replaying an accepted purchase's key; an admin raising the stock through A clears both nodes
// at once (the TTL is an hour here: only the event can clear it), and A takes the next purchase.
func TestSoldOutAcrossNodes(t *testing.T) {
	t.Parallel()
	hour := func(c *config.Config) { c.SoldOutTTL = time.Hour }
	a := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, Configure: hour})
	b := secondNode(t, a, testutil.SystemOptions{Configure: hour})
	ca, cb := testutil.NewClient(a.URL), testutil.NewClient(b.URL)
	_, adminToken := a.Admin(t)
	users := a.CreateUsers(t, 2, domain.RoleShopper)
	first, late := a.TokenFor(t, users[0]), a.TokenFor(t, users[1])
	sale := a.CreateSale(t, 1, 1, -time.Second, time.Hour)
	tenant, saleID := sale.Sale.TenantID, sale.Sale.ID

	if r := buy(t, cb, first, saleID, "soldout-first", 1); r.Status != http.StatusAccepted {
		t.Fatalf("the last unit through B: %d %s", r.Status, r.Body)
	}
	testutil.WaitFor(t, 5*time.Second, "node A to learn the sale sold out", func() bool {
		return a.App.SoldOutSales.Has(tenant, saleID)
	})
	for range 2 {
		r := buy(t, ca, late, saleID, "soldout-late", 1)

		if r.Status != http.StatusConflict || r.ProblemType() != "sold-out" ||
			r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("purchase through A: %d %s %v, want a fresh 409 sold-out", r.Status, r.Body, r.Header)
		}
	}
	if keys := testutil.Keys(context.Background(), a.Redis, a.Config.RedisPrefix+":idem:*"+users[1].ID.String()+"*"); len(keys) != 0 {
		t.Fatalf("the purchases answered from memory left keys in Redis: %v", keys)
	}
	if r := buy(t, ca, first, saleID, "soldout-first", 1); r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry of the accepted purchase through A: %d %s, want its 202 replayed", r.Status, r.Body)
	}

	patchSale(t, ca, adminToken, saleID, map[string]any{"totalStock": 2})
	testutil.WaitFor(t, 5*time.Second, "both nodes to learn the stock is back", func() bool {
		return !a.App.SoldOutSales.Has(tenant, saleID) && !b.App.SoldOutSales.Has(tenant, saleID)
	})
	if r := buy(t, ca, late, saleID, "soldout-late", 1); r.Status != http.StatusAccepted {
		t.Fatalf("the same key once stock is back: %d %s, want accepted (a refusal from memory is not replayed)", r.Status, r.Body)
	}
}
