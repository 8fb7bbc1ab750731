package asynq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/flashsale/flashsale/internal/domain"
)

type resultsSeen []string

func (r *resultsSeen) OrderTask(result string) { *r = append(*r, result) }

func (r *resultsSeen) OrderWritten(time.Duration) {}

type delaysSeen struct {
	resultsSeen
	delays []time.Duration
}

func (d *delaysSeen) OrderWritten(delay time.Duration) { d.delays = append(d.delays, delay) }

// TestObservedTimesAcceptedToDurable: an order written is timed from its acceptance (the
// reservation's CreatedAt, in the task); one not written is not.
func TestObservedTimesAcceptedToDurable(t *testing.T) {
	t.Parallel()
	task, err := NewOrderCreateTask(context.Background(), domain.Reservation{OrderID: uuid.New(), TenantID: uuid.New(), SaleID: uuid.New(),
		UserID: uuid.New(), Quantity: 1, CreatedAt: time.Now().Add(-2 * time.Second)}, "orders", 1)
	if err != nil {
		t.Fatal(err)
	}
	var seen delaysSeen
	_ = observed(&seen, func(context.Context, *asynq.Task) error { return nil })(context.Background(), task)
	_ = observed(&seen, func(context.Context, *asynq.Task) error { return errors.New("down") })(context.Background(), task)
	if len(seen.delays) != 1 || seen.delays[0] < 2*time.Second || seen.delays[0] > time.Minute {
		t.Fatalf("delays %v, want one of about 2s", seen.delays)
	}
}

// TestObservedCountsEachRunByResult: a run that returns nothing wrote the order, one that skips
// the retries gave it up, any other failure is retried; the handler's error passes unchanged.
func TestObservedCountsEachRunByResult(t *testing.T) {
	t.Parallel()
	var seen resultsSeen
	transient := errors.New("connection refused")
	for _, err := range []error{nil, transient, fmt.Errorf("refused: %w", asynq.SkipRetry), nil} {
		h := observed(&seen, func(context.Context, *asynq.Task) error { return err })
		if got := h(context.Background(), asynq.NewTask(TypeOrderCreate, nil)); !errors.Is(got, err) {
			t.Fatalf("handler error %v, want %v", got, err)
		}
	}
	if want := []string{TaskWritten, TaskRetried, TaskGivenUp, TaskWritten}; !slices.Equal(seen, want) {
		t.Fatalf("results %v, want %v", seen, want)
	}
	if h := observed(nil, nil); h != nil {
		t.Fatal("without an observer the handler must be left as it is")
	}
}
