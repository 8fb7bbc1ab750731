package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// failingQueue loses every enqueue while down: the crash between the reservation script and
// the enqueue, seen from the outside.
type failingQueue struct {
	ports.OrderQueue
	down atomic.Bool
}

func (q *failingQueue) EnqueueOrder(ctx context.Context, r domain.Reservation) error {
	if q.down.Load() {
		return errors.New("process died before enqueueing")
	}
	return q.OrderQueue.EnqueueOrder(ctx, r)
}

// failingOrders is PostgreSQL failing every confirmed order while down: unreachable (a
// transient error), or, if refuses is set, refusing the row itself (a permanent error). A
// failed order is still recorded.
type failingOrders struct {
	ports.OrderRepository
	down    atomic.Bool
	refuses bool
	tries   atomic.Int32
}

func (o *failingOrders) SaveOrder(ctx context.Context, ord domain.Order, events ...domain.Event) (bool, error) {
	if ord.Status == domain.OrderConfirmed {
		o.tries.Add(1)
		if o.down.Load() && o.refuses {
			return false, fmt.Errorf("violates check constraint: %w", domain.ErrPermanent)
		}
		if o.down.Load() {
			return false, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
		}
	}
	return o.OrderRepository.SaveOrder(ctx, ord, events...)
}

// onFailingOrders is a system whose order repository is orders, a sale of 5 (limit 2) open a
// second ago, a shopper's token and the admin's.
type onFailingOrders struct {
	sys               *testutil.System
	c                 *testutil.Client
	sale              app.SaleView
	token, adminToken string
	path              string // the sale's
}

func startOnFailingOrders(t *testing.T, orders *failingOrders, configure func(*config.Config)) onFailingOrders {
	t.Helper()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Configure: configure, Options: []fx.Option{
		fx.Decorate(func(o ports.OrderRepository) ports.OrderRepository { orders.OrderRepository = o; return orders }),
	}})
	sale := sys.CreateSale(t, 5, 2, -time.Second, time.Hour)
	_, adminToken := sys.Admin(t)
	return onFailingOrders{sys: sys, c: testutil.NewClient(sys.URL), sale: sale,
		token: sys.TokenFor(t, sys.CreateUsers(t, 1, domain.RoleShopper)[0]), adminToken: adminToken,
		path: "/v1/sales/" + sale.Sale.ID.String()}
}

func buy(t *testing.T, c *testutil.Client, token string, saleID uuid.UUID, key string, qty int) testutil.Response {
	t.Helper()
	return c.Do(t, testutil.Request{Method: "POST", Path: "/v1/sales/" + saleID.String() + "/orders", Token: token,
		Header: map[string]string{"Idempotency-Key": key}, Body: map[string]any{"quantity": qty}})
}

func orderStatus(t *testing.T, c *testutil.Client, token, orderID string) string {
	t.Helper()
	r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/orders/" + orderID, Token: token})
	if r.Status != http.StatusOK {
		return r.ProblemType()
	}
	return r.JSON(t)["status"].(string)
}

// TestReservationNeverEnqueuedIsRecovered: the script took the stock, then the process died
// before the task reached the queue. The reconciler finds the reservation and the order is
// written anyway.
func TestReservationNeverEnqueuedIsRecovered(t *testing.T) {
	t.Parallel()
	queue := &failingQueue{}
	queue.down.Store(true)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Options: []fx.Option{
		fx.Decorate(func(q ports.OrderQueue) ports.OrderQueue { queue.OrderQueue = q; return queue }),
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 10, 5, -time.Second, time.Hour)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	token := sys.TokenFor(t, shopper)

	r := buy(t, c, token, sale.Sale.ID, "lost-enqueue-1", 3)
	if r.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	orderID := r.JSON(t)["id"].(string)
	if got := orderStatus(t, c, token, orderID); got != "pending" {
		t.Fatalf("order before recovery: %s", got)
	}
	queue.down.Store(false) // the node is back

	rec := sys.App.Reconcile
	rec.Grace = 0
	rep, err := rec.Handle(context.Background())
	if err != nil || rep.Requeued != 1 {
		t.Fatalf("reconcile: %+v, %v", rep, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the recovered order to be confirmed", func() bool {
		return orderStatus(t, c, token, orderID) == "confirmed"
	})
	// A second pass finds nothing left to do.
	if rep, err := rec.Handle(context.Background()); err != nil || rep.Requeued+rep.Released != 0 {
		t.Fatalf("second reconcile: %+v, %v", rep, err)
	}
}

// TestDatabaseOutageNeverCancelsAnOrder: the database is unreachable for longer than the
// attempts a refused order gets; the order is retried through the outage, its stock stays
// taken, nothing is dead-lettered, and it is confirmed within seconds of the database coming
// back.
func TestDatabaseOutageNeverCancelsAnOrder(t *testing.T) {
	t.Parallel()
	orders := &failingOrders{}
	orders.down.Store(true)
	w := startOnFailingOrders(t, orders, func(c *config.Config) {
		c.WorkerRetryBase, c.WorkerRetryMax = 200*time.Millisecond, time.Second
	})
	sys, c, sale, token, adminToken, path := w.sys, w.c, w.sale, w.token, w.adminToken, w.path

	r := buy(t, c, token, sale.Sale.ID, "through-the-outage", 2)
	if r.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	orderID := r.JSON(t)["id"].(string)
	testutil.WaitFor(t, 30*time.Second, "more attempts than ORDER_ATTEMPTS", func() bool {
		return orders.tries.Load() > int32(sys.Config.OrderAttempts)+2
	})
	if st := orderStatus(t, c, token, orderID); st != "pending" {
		t.Fatalf("order during the outage: %s, want pending", st)
	}
	if inv := c.Do(t, testutil.Request{Method: "GET", Path: path + "/inventory"}).JSON(t); inv["remaining"] != 3.0 {
		t.Fatalf("stock during the outage: %v, want still taken", inv)
	}
	back := time.Now()
	orders.down.Store(false)
	testutil.WaitFor(t, 10*time.Second, "the order to be confirmed", func() bool {
		return orderStatus(t, c, token, orderID) == "confirmed"
	})
	t.Logf("%d attempts during the outage; confirmed %v after the database came back", orders.tries.Load()-1, time.Since(back).Round(time.Millisecond))
	dl := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/admin/dead-letters", Token: adminToken}).JSON(t)
	if len(dl["items"].([]any)) != 0 {
		t.Fatalf("dead letters: %v", dl)
	}
}

// TestWorkerRefusedEveryAttemptDeadLettersAndReturnsStock: PostgreSQL refuses the order itself
// 3 times (ORDER_ATTEMPTS); it lands in the dead-letter set, is recorded failed, and its stock
// and the buyer's allowance go back on sale. Once the database takes it an admin retries it.
func TestWorkerRefusedEveryAttemptDeadLettersAndReturnsStock(t *testing.T) {
	t.Parallel()
	orders := &failingOrders{refuses: true}
	orders.down.Store(true)
	w := startOnFailingOrders(t, orders, nil)
	c, sale, token, adminToken, path := w.c, w.sale, w.token, w.adminToken, w.path

	r := buy(t, c, token, sale.Sale.ID, "doomed-order-1", 2)
	if r.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	orderID := r.JSON(t)["id"].(string)
	if inv := c.Do(t, testutil.Request{Method: "GET", Path: path + "/inventory"}).JSON(t); inv["remaining"] != 3.0 {
		t.Fatalf("stock while pending: %v", inv)
	}
	testutil.WaitFor(t, 30*time.Second, "the order to fail", func() bool {
		return orderStatus(t, c, token, orderID) == "failed"
	})
	if inv := c.Do(t, testutil.Request{Method: "GET", Path: path + "/inventory"}).JSON(t); inv["remaining"] != 5.0 {
		t.Fatalf("stock after the failure: %v", inv)
	}
	dl := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/admin/dead-letters", Token: adminToken}).JSON(t)
	items := dl["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("dead letters: %v", dl)
	}
	item := items[0].(map[string]any)
	if item["orderId"] != orderID || item["attempts"] != 3.0 || item["lastError"] == "" {
		t.Fatalf("dead letter: %v", item)
	}

	// The allowance came back: the shopper could buy 2 again. Retrying the dead letter instead,
	// once the database is back, takes the stock again and writes the order.
	orders.down.Store(false)
	retry := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/admin/dead-letters/" + orderID + "/retry", Token: adminToken})
	if retry.Status != http.StatusAccepted || retry.JSON(t)["status"] != "pending" {
		t.Fatalf("retry: %d %s", retry.Status, retry.Body)
	}
	testutil.WaitFor(t, 10*time.Second, "the retried order to be confirmed", func() bool {
		return orderStatus(t, c, token, orderID) == "confirmed"
	})
	if inv := c.Do(t, testutil.Request{Method: "GET", Path: path + "/inventory"}).JSON(t); inv["remaining"] != 3.0 {
		t.Fatalf("stock after the retry: %v", inv)
	}
	if r := buy(t, c, token, sale.Sale.ID, "over-the-limit", 1); r.ProblemType() != "purchase-limit-exceeded" {
		t.Fatalf("the confirmed retry must count against the limit: %d %s", r.Status, r.Body)
	}
	dl = c.Do(t, testutil.Request{Method: "GET", Path: "/v1/admin/dead-letters", Token: adminToken}).JSON(t)
	if len(dl["items"].([]any)) != 0 {
		t.Fatalf("dead letters after the retry: %v", dl)
	}
	if r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/admin/dead-letters/" + orderID + "/retry", Token: adminToken}); r.Status != http.StatusNotFound {
		t.Fatalf("retrying a confirmed order: %d %s", r.Status, r.Body)
	}
}

// TestWorkerStoppedMidTaskHandsItBack: a graceful stop while an order is being written hands
// the task back to the queue, and the next worker writes it.
func TestWorkerStoppedMidTaskHandsItBack(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	dbURL := testutil.NewDatabase(t)
	hung := &hangingOrders{entered: make(chan struct{}, 1)}
	first := testutil.StartSystem(t, testutil.SystemOptions{DatabaseURL: dbURL, Redis: &r,
		Configure: func(c *config.Config) { c.ShutdownWait = 500 * time.Millisecond },
		Options: []fx.Option{fx.Decorate(func(o ports.OrderRepository) ports.OrderRepository {
			hung.OrderRepository = o
			return hung
		})}})
	c := testutil.NewClient(first.URL)
	sale := first.CreateSale(t, 10, 5, -time.Second, time.Hour)
	shopper := first.CreateUsers(t, 1, domain.RoleShopper)[0]
	resp := buy(t, c, first.TokenFor(t, shopper), sale.Sale.ID, "hand-back-1", 1)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", resp.Status, resp.Body)
	}
	orderID := uuid.MustParse(resp.JSON(t)["id"].(string))
	select {
	case <-hung.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never started writing the order")
	}
	first.Stop(t) // mid-write

	second := testutil.StartSystem(t, testutil.SystemOptions{DatabaseURL: dbURL, Redis: &r, NoAPI: true})
	testutil.WaitFor(t, 20*time.Second, "the next worker to write the order", func() bool {
		_, err := second.Store.Order(context.Background(), sale.Sale.TenantID, orderID)
		return err == nil
	})
}

// hangingOrders blocks every write until the worker gives up on it.
type hangingOrders struct {
	ports.OrderRepository
	entered chan struct{}
}

func (o *hangingOrders) SaveOrder(ctx context.Context, _ domain.Order, _ ...domain.Event) (bool, error) {
	select {
	case o.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return false, ctx.Err()
}

// TestWorkerKilledMidTaskIsRecovered: the worker process is SIGKILLed while its INSERT waits on
// a lock. Nothing is handed back; the task's lease expires and the next worker recovers it.
func TestWorkerKilledMidTaskIsRecovered(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for an Asynq lease to expire (about a minute)")
	}
	t.Parallel()
	bin := flashsaleBinary(t)
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 10, 5, -time.Second, time.Hour)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	ctx := context.Background()

	// Hold a lock that makes the worker's INSERT wait.
	lock, err := sys.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE orders IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	worker := exec.Command(bin, "worker")
	worker.Env = append(os.Environ(), "APP_ENV=test", "LOG_LEVEL=warn", "DATABASE_URL="+sys.Config.DatabaseURL,
		"REDIS_URL="+sys.Config.RedisURL, "REDIS_PREFIX="+sys.Config.RedisPrefix, "ORDER_QUEUE="+sys.Config.OrderQueue,
		"WORKER_POLL_INTERVAL=20ms")
	worker.Stdout, worker.Stderr = os.Stderr, os.Stderr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	resp := buy(t, c, sys.TokenFor(t, shopper), sale.Sale.ID, "killed-worker-1", 2)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", resp.Status, resp.Body)
	}
	orderID := uuid.MustParse(resp.JSON(t)["id"].(string))
	inspector := asynq.NewInspectorFromRedisClient(sys.Redis)
	testutil.WaitFor(t, 20*time.Second, "the worker to take the task", func() bool {
		active, err := inspector.ListActiveTasks(sys.Config.OrderQueue)
		return err == nil && len(active) == 1
	})
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = worker.Wait()
	killedAt := time.Now()
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Store.Order(ctx, sale.Sale.TenantID, orderID); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("the killed worker must not have written the order: %v", err)
	}

	// Asynq takes a task over once its lease (30 s) expired 30 s ago (clock-skew margin); a
	// worker recovers such tasks when it starts and every minute after.
	time.Sleep(time.Until(killedAt.Add(61 * time.Second)))
	r := testutil.Redis{Client: nil, Prefix: sys.Config.RedisPrefix, Queue: sys.Config.OrderQueue}
	testutil.StartSystem(t, testutil.SystemOptions{DatabaseURL: sys.Config.DatabaseURL, Redis: &r, NoAPI: true})
	testutil.WaitFor(t, 30*time.Second, "the recovered order to be written", func() bool {
		o, err := sys.Store.Order(ctx, sale.Sale.TenantID, orderID)
		return err == nil && o.Status == domain.OrderConfirmed && o.Quantity == 2
	})
}

// TestDeadNodesOrdersAreQueuedWithinSeconds: an API node accepted orders it could not queue and
// then went away without handing them over. Its lease runs out and the worker queues them
// within seconds, without the reconciler (whose passes the test systems leave to the tests).
func TestDeadNodesOrdersAreQueuedWithinSeconds(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	worker := testutil.StartSystem(t, testutil.SystemOptions{NoAPI: true, Redis: &r})
	queue := &failingQueue{}
	queue.down.Store(true)
	node := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, Redis: &r,
		DatabaseURL: worker.Config.DatabaseURL,
		Configure:   func(c *config.Config) { c.NodeLease = time.Second },
		Options: []fx.Option{
			fx.Decorate(func(q ports.OrderQueue) ports.OrderQueue { queue.OrderQueue = q; return queue }),
		}})
	c := testutil.NewClient(node.URL)
	sale := node.CreateSale(t, 10, 2, -time.Second, time.Hour)
	shoppers := node.CreateUsers(t, 5, domain.RoleShopper)
	for _, u := range shoppers {
		if resp := buy(t, c, node.TokenFor(t, u), sale.Sale.ID, "held-"+u.ID.String(), 1); resp.Status != http.StatusAccepted {
			t.Fatalf("purchase: %d %s", resp.Status, resp.Body)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "the node to give up queueing them", func() bool {
		return node.Dispatch.Stranded() == 5
	})
	node.Stop(t) // gone, holding 5 accepted orders
	gone := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the 5 orders to be written", func() bool {
		var n int
		_ = worker.Pool.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE sale_id = $1 AND status = 'confirmed'",
			sale.Sale.ID).Scan(&n)
		return n == 5
	})
	t.Logf("written %v after the node went away (lease %v)", time.Since(gone).Round(10*time.Millisecond), node.Config.NodeLease)
}
