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

// TestRedisLosingItsDataNeverOversells: Redis restarts empty in the middle of a sale (this
// system's keys and queue deleted, as FLUSHALL would for it). Sessions are gone: shoppers log in
// again (documented). The sale's inventory is restored from PostgreSQL on the next purchase and
// fenced for INVENTORY_RESTORE_FENCE (503 with Retry-After); a retried key replays its order;
// the per-user limit still counts the orders made before; and the sale sells exactly its stock.
func TestRedisLosingItsDataNeverOversells(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Redis: &r,
		Configure: func(c *config.Config) { c.RestoreFence = time.Second }})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 6, 2, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 5, domain.RoleShopper)
	tokens := make([]string, len(shoppers))
	var firstOrder string
	for i, u := range shoppers[:3] {
		tokens[i] = sys.TokenFor(t, u)
		resp := buy(t, c, tokens[i], sale.Sale.ID, "before-"+u.ID.String(), 1)
		if resp.Status != http.StatusAccepted {
			t.Fatalf("purchase before the loss: %d %s", resp.Status, resp.Body)
		}
		if i == 0 {
			firstOrder = resp.JSON(t)["id"].(string)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "the first orders to be durable", func() bool {
		var n int
		_ = sys.Pool.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE sale_id = $1 AND status = 'confirmed'",
			sale.Sale.ID).Scan(&n)
		return n == 3
	})

	// Redis loses everything of this system.
	ctx := context.Background()
	for _, pattern := range []string{r.Prefix + ":*", "asynq:{" + r.Queue + "}:*", "asynq:{" + r.Queue + "-sales}:*"} {
		testutil.DeleteKeys(ctx, sys.Redis, pattern)
	}

	// The sessions went with it: the old token is refused, a new login works.
	if resp := buy(t, c, tokens[0], sale.Sale.ID, "after-the-loss", 1); resp.Status != http.StatusUnauthorized {
		t.Fatalf("a token of a lost session: %d %s, want 401 (log in again)", resp.Status, resp.Body)
	}
	for i, u := range shoppers {
		tokens[i] = sys.TokenFor(t, u)
	}
	// First purchase after the loss: the inventory is restored and fenced.
	resp := buy(t, c, tokens[3], sale.Sale.ID, "fenced-purchase", 1)
	if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("purchase right after the restore: %d %s, want 503 with Retry-After", resp.Status, resp.Body)
	}
	// A retried key replays its order, fence or not.
	replay := buy(t, c, tokens[0], sale.Sale.ID, "before-"+shoppers[0].ID.String(), 1)
	if replay.Status != http.StatusAccepted || replay.JSON(t)["id"] != firstOrder {
		t.Fatalf("retried key after the loss: %d %s, want its order %s", replay.Status, replay.Body, firstOrder)
	}
	time.Sleep(sys.Config.RestoreFence)

	// The sale goes on: 3 units left; shopper 0 may take 1 more (limit 2), not 2.
	if resp := buy(t, c, tokens[0], sale.Sale.ID, "over-the-limit", 2); resp.ProblemType() != "purchase-limit-exceeded" {
		t.Fatalf("shopper over the limit after the loss: %d %s", resp.Status, resp.Body)
	}
	accepted := 0
	for i := range shoppers {
		for k := range 2 {
			if resp := buy(t, c, tokens[i], sale.Sale.ID, "after-loss-"+string(rune('a'+k)), 1); resp.Status == http.StatusAccepted {
				accepted++
			}
		}
	}
	if accepted != 3 {
		t.Fatalf("%d purchases accepted after the loss, want the 3 units left", accepted)
	}
	testutil.WaitFor(t, 20*time.Second, "every order durable", func() bool {
		var units int
		_ = sys.Pool.QueryRow(ctx, "SELECT COALESCE(sum(quantity), 0) FROM orders WHERE sale_id = $1 AND status = 'confirmed'",
			sale.Sale.ID).Scan(&units)
		return units == 6
	})
	var over int
	if err := sys.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT user_id FROM orders WHERE sale_id = $1 AND status = 'confirmed'
		GROUP BY user_id HAVING sum(quantity) > 2) x`, sale.Sale.ID).Scan(&over); err != nil || over != 0 {
		t.Fatalf("%d shoppers above the limit (%v)", over, err)
	}
}
