package asynq_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	asynqadapter "github.com/flashsale/flashsale/internal/adapters/asynq"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestStatsReadTheQueues: the pending orders of a queue and how long the oldest has waited; a
// queue no task made yet reads as empty, not as an error.
func TestStatsReadTheQueues(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	q := asynqadapter.NewQueue(r.Client, asynqadapter.QueueConfig{Queue: r.Queue})
	for range 3 {
		res := domain.Reservation{OrderID: uuid.Must(uuid.NewV7()), TenantID: uuid.New(), SaleID: uuid.New(),
			UserID: uuid.New(), Quantity: 1, CreatedAt: time.Now()}
		if err := q.EnqueueOrder(context.Background(), res); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	stats, err := q.Stats(r.Queue, r.Queue+"-sales")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 {
		t.Fatalf("stats %+v, want both queues", stats)
	}
	if s := stats[0]; s.Queue != r.Queue || s.Pending != 3 || s.Archived != 0 || s.Latency < 50*time.Millisecond {
		t.Fatalf("order queue %+v, want 3 pending, the oldest at least 50ms old", s)
	}
	if s := stats[1]; s != (asynqadapter.QueueStats{Queue: r.Queue + "-sales"}) {
		t.Fatalf("a queue with no task yet: %+v, want empty", s)
	}
}
