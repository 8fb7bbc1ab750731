package asynq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

type resultsSeen []string

func (r *resultsSeen) OrderTask(result string) { *r = append(*r, result) }

func (r *resultsSeen) OrderWritten(time.Duration) {}

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
