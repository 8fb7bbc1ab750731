package asynq_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	asynqadapter "github.com/flashsale/flashsale/internal/adapters/asynq"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// A Redis failover can lose the end of an order task: a worker finished it on the old primary,
// and the promoted replica still holds it as running, with nobody renewing its lease. Once two
// heartbeats were missed it is listed as stranded; a task a live worker runs on the new primary
// is not.
func TestStrandedOrdersAfterAFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const queue = "orders"
	primary := testutil.StartRedisServer(t)
	replica := primary.StartReplica(t)

	stranded := reservation()
	enqueue(t, primary, queue, stranded)
	started, release := make(chan struct{}), make(chan struct{})
	old := serve(t, primary, queue, func(ctx context.Context, _ *asynq.Task) error {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	<-started
	if err := primary.Client.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	// The primary is lost with the task's end: the replica is promoted while the task runs;
	// the worker then finishes it on the old primary.
	if err := replica.Client.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	close(release)
	old.Shutdown()

	running := reservation()
	enqueue(t, replica, queue, running)
	runs := make(chan struct{})
	serve(t, replica, queue, func(ctx context.Context, _ *asynq.Task) error {
		close(runs)
		<-ctx.Done()
		return ctx.Err()
	})
	<-runs

	q := asynqadapter.NewQueue(replica.Client, asynqadapter.QueueConfig{Queue: queue})
	ids := func() []uuid.UUID {
		got, err := q.StrandedOrders(ctx, 100)
		if err != nil {
			t.Fatalf("StrandedOrders: %v", err)
		}
		out := make([]uuid.UUID, len(got))
		for i, r := range got {
			out[i] = r.OrderID
		}
		return out
	}
	if got := ids(); len(got) != 0 {
		t.Fatalf("stranded at once = %v; want none before two heartbeats are missed", got)
	}
	testutil.WaitFor(t, 30*time.Second, "the task to count as stranded", func() bool {
		return slices.Contains(ids(), stranded.OrderID)
	})
	got, err := q.StrandedOrders(ctx, 100)
	if err != nil || len(got) != 1 {
		t.Fatalf("StrandedOrders = %v, %v; want only the task the failover lost", got, err)
	}
	if got[0] != stranded {
		t.Errorf("stranded reservation = %+v, want %+v", got[0], stranded)
	}
}

func reservation() domain.Reservation {
	return domain.Reservation{OrderID: uuid.New(), TenantID: uuid.New(), SaleID: uuid.New(), UserID: uuid.New(),
		Quantity: 2, IdempotencyKey: uuid.NewString(), UnitPriceCents: 1999, Currency: "EUR",
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Status: domain.OrderPending}
}

func enqueue(t *testing.T, s *testutil.RedisServer, queue string, r domain.Reservation) {
	t.Helper()
	if err := asynqadapter.NewQueue(s.Client, asynqadapter.QueueConfig{Queue: queue}).EnqueueOrder(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// serve runs one task at a time from queue with h, until the test ends.
func serve(t *testing.T, s *testutil.RedisServer, queue string, h asynq.HandlerFunc) *asynq.Server {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(s.Client, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqadapter.TypeOrderCreate, h)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}
