package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// OrderDispatcher queues accepted orders off the request path: the reservation is already
// durable (Redis records it and the reconciler re-queues anything not written in time), so the
// shopper's answer need not wait for the queue. When its buffer is full, or it is not running,
// it queues inline: back-pressure instead of loss.
type OrderDispatcher struct {
	Queue ports.OrderQueue
	Log   *slog.Logger
	// Workers queue from a buffer of Buffer orders once started (at least one worker).
	Workers int
	Buffer  int
	// Attempts bounds the tries of one enqueue (at least one): a Redis too busy to answer in
	// time (a spike) usually answers a moment later, sooner than the reconciler would come by.
	Attempts int

	mu       sync.RWMutex
	ch       chan domain.Reservation
	running  bool
	wg       sync.WaitGroup
	stranded atomic.Int64
}

// Stranded counts the accepted orders this dispatcher could not queue (or still held when a
// stop ran out of time): the node must not leave cleanly while any exist, so that its lease
// runs out and the worker queues them (ReconcileHandler.DeadNodes).
func (d *OrderDispatcher) Stranded() int64 { return d.stranded.Load() }

// Start runs the workers.
func (d *OrderDispatcher) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ch = make(chan domain.Reservation, max(d.Buffer, 0))
	d.running = true
	for range max(d.Workers, 1) {
		d.wg.Go(func() {
			for r := range d.ch {
				d.enqueue(context.Background(), r)
			}
		})
	}
}

// Stop queues what is buffered and stops; it returns when done or when ctx ends.
func (d *OrderDispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		return nil
	}
	d.running = false
	close(d.ch)
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		d.stranded.Add(1) // what is left is found by the reconciler
		return ctx.Err()
	}
}

// Dispatch queues r, in the background if it can.
func (d *OrderDispatcher) Dispatch(ctx context.Context, r domain.Reservation) {
	d.mu.RLock()
	if d.running {
		select {
		case d.ch <- r:
			d.mu.RUnlock()
			return
		default:
		}
	}
	d.mu.RUnlock()
	d.enqueue(ctx, r)
}

func (d *OrderDispatcher) enqueue(ctx context.Context, r domain.Reservation) {
	ctx = context.WithoutCancel(ctx)
	attempts := max(d.Attempts, 1)
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
		}
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = d.Queue.EnqueueOrder(tctx, r)
		cancel()
		if err == nil || errors.Is(err, ports.ErrAlreadyQueued) {
			return
		}
	}
	d.stranded.Add(1)
	d.Log.ErrorContext(ctx, "order accepted but not queued; the reconciler will queue it",
		"order_id", r.OrderID, "attempts", attempts, "err", err)
}
