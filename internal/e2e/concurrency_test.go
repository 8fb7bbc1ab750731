package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestConcurrentPurchasesSellExactlyTheStock is the brief's core promise: thousands of shoppers
// press buy at the same instant, and exactly the stock is sold, nobody beyond the limit, every
// accepted order written to PostgreSQL exactly once. Also with the sale in 8 stock shards
// (domain.Sale.Shards): shoppers whose shard runs dry take stock from the others, and the sale
// sells out only when every shard has.
func TestConcurrentPurchasesSellExactlyTheStock(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t)
	for _, shards := range []int{1, 8} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			testConcurrentPurchases(t, shards) // one burst at a time: each is 5,000 connections
		})
	}
}

func testConcurrentPurchases(t *testing.T, shards int) {
	const (
		stock, perUserLimit = 100, 2
		users, attempts     = 1000, 5 // 5,000 purchase attempts
	)
	// The reconciler runs as in production (faster): a slow machine may time out an enqueue,
	// and the orders it strands must still reach PostgreSQL.
	sys := testutil.StartSystem(t, testutil.SystemOptions{Configure: func(c *config.Config) {
		c.ReconcileInterval, c.ReconcileGrace = time.Second, 5*time.Second
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateShardedSale(t, stock, perUserLimit, shards, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, users, domain.RoleShopper)
	tokens := make([]string, users)
	for i, u := range shoppers {
		tokens[i] = sys.TokenFor(t, u)
	}

	type answer struct {
		user    int
		status  int
		problem string
		orderID string
		qty     int
	}
	answers := make(chan answer, users*attempts)
	var retries atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range users {
		for a := range attempts {
			wg.Go(func() {
				qty := 1 + (i+a)%2 // a mix of 1s and 2s
				<-start
				req := testutil.Request{
					Method: "POST", Path: "/v1/sales/" + sale.Sale.ID.String() + "/orders", Token: tokens[i],
					Header: map[string]string{"Idempotency-Key": fmt.Sprintf("u%d-attempt-%d", i, a)},
					Body:   map[string]any{"quantity": qty},
				}
				r := c.Do(t, req)
				// As a client does: a 503 (Redis saturated on a busy machine) is sent again with
				// the same key after its Retry-After.
				for try := 0; r.Status == http.StatusServiceUnavailable && try < 30; try++ {
					retries.Add(1)
					time.Sleep(retryAfter(r))
					r = c.Do(t, req)
				}
				ans := answer{user: i, status: r.Status, problem: r.ProblemType(), qty: qty}
				if r.Status == http.StatusAccepted {
					ans.orderID = r.JSON(t)["id"].(string)
				}
				answers <- ans
			})
		}
	}
	began := time.Now()
	close(start)
	wg.Wait()
	close(answers)
	answered := time.Since(began)

	sold, accepted := 0, map[string]bool{}
	perUser := map[int]int{}
	outcomes := map[string]int{}
	for a := range answers {
		switch {
		case a.status == http.StatusAccepted:
			if accepted[a.orderID] {
				t.Errorf("order %s accepted twice", a.orderID)
			}
			accepted[a.orderID] = true
			sold += a.qty
			perUser[a.user] += a.qty
			outcomes["202"]++
		case a.status == http.StatusConflict:
			outcomes["409 "+a.problem]++
		default:
			t.Errorf("unexpected answer %d %s", a.status, a.problem)
		}
	}
	t.Logf("%d attempts answered in %s: %v (%d answers of 503 sent again)", users*attempts, answered, outcomes, retries.Load())
	if sold != stock {
		t.Fatalf("sold %d units, stock is %d", sold, stock)
	}
	for u, n := range perUser {
		if n > perUserLimit {
			t.Errorf("user %d bought %d units, limit %d", u, n, perUserLimit)
		}
	}

	// Every accepted order reaches PostgreSQL, exactly once.
	ctx := context.Background()
	var rows, units int
	testutil.WaitFor(t, 3*time.Minute, "the worker to write every accepted order", func() bool {
		err := sys.Pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(quantity), 0) FROM orders WHERE sale_id = $1`,
			sale.Sale.ID).Scan(&rows, &units)
		return err == nil && rows >= len(accepted)
	})
	if rows != len(accepted) || units != stock {
		t.Fatalf("PostgreSQL holds %d orders / %d units; accepted %d orders / %d units", rows, units, len(accepted), stock)
	}
	ids := make([]uuid.UUID, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, uuid.MustParse(id))
	}
	confirmed, err := sys.Store.ConfirmedOrderIDs(ctx, sale.Sale.TenantID, ids)
	if err != nil || len(confirmed) != len(accepted) {
		t.Fatalf("confirmed %d of %d accepted orders (err %v)", len(confirmed), len(accepted), err)
	}
	var overLimit int
	if err := sys.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT user_id FROM orders WHERE sale_id = $1
		GROUP BY user_id HAVING sum(quantity) > $2) x`, sale.Sale.ID, perUserLimit).Scan(&overLimit); err != nil || overLimit != 0 {
		t.Fatalf("%d users above the limit in PostgreSQL (err %v)", overLimit, err)
	}
	inv, ok, err := sys.App.Reconcile.Inventory.Inventory(ctx, sale.Sale.TenantID, sale.Sale.ID)
	if err != nil || !ok || inv.Remaining != 0 || inv.Sold != stock {
		t.Fatalf("inventory after the sale: %+v ok=%v err=%v", inv, ok, err)
	}
	// The worker marks a reservation durable in Redis after PostgreSQL's commit, which the wait
	// above saw: the last ones may land a moment later (a Cluster takes longer).
	var awaited []domain.Reservation
	testutil.WaitFor(t, 30*time.Second, "every reservation marked durable", func() bool {
		awaited, err = sys.App.Reconcile.Inventory.AwaitedReservations(ctx, sale.Sale.TenantID, sale.Sale.ID, time.Now().Add(time.Hour), 1000)
		return err == nil && len(awaited) == 0
	})
}

// retryAfter is a 503's Retry-After, in seconds (1 if absent or malformed).
func retryAfter(r testutil.Response) time.Duration {
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return time.Second
}
