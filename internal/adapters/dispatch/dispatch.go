// Package dispatch is an asynchronous decorator of ports.OrderQueue for the purchase path: an
// accepted order is handed to a buffer and queued by background workers, so the shopper's answer
// need not wait for the queue. The reservation is durable already (the inventory records it, and
// the worker queues what a dead node held), so a buffered order is not at risk.
package dispatch

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

// Config sizes the dispatcher (DISPATCH_WORKERS, DISPATCH_BUFFER, DISPATCH_ATTEMPTS).
type Config struct {
	// Workers queue from a buffer of Buffer orders once started (at least one worker).
	Workers int
	Buffer  int
	// Attempts bounds the tries of one enqueue (at least one): a Redis too busy to answer in
	// time (a spike) usually answers a moment later, sooner than the reconciler would come by.
	Attempts int
}

// Queue decorates an OrderQueue: EnqueueOrder buffers the order and answers at once; when the
// buffer is full, or the dispatcher is not running, it queues inline (back-pressure instead of
// loss). Every other method is the inner queue's.
type Queue struct {
	ports.OrderQueue
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex
	ch       chan domain.Reservation
	running  bool
	wg       sync.WaitGroup
	stranded atomic.Int64
}

var _ ports.OrderQueue = (*Queue)(nil)

// New decorates inner.
func New(inner ports.OrderQueue, cfg Config, log *slog.Logger) *Queue {
	return &Queue{OrderQueue: inner, cfg: cfg, log: log}
}

// Start runs the workers.
func (q *Queue) Start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ch = make(chan domain.Reservation, max(q.cfg.Buffer, 0))
	q.running = true
	for range max(q.cfg.Workers, 1) {
		q.wg.Go(func() {
			for r := range q.ch {
				_ = q.enqueue(context.Background(), r)
			}
		})
	}
}

// Stop queues what is buffered and stops; it returns when done or when ctx ends.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	if !q.running {
		q.mu.Unlock()
		return nil
	}
	q.running = false
	close(q.ch)
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		q.stranded.Add(1) // what is left is found by the worker once this node's lease ends
		return ctx.Err()
	}
}

// Stranded counts the accepted orders this dispatcher could not queue (or still held when a
// stop ran out of time): the node must not leave cleanly while any exist, so that its lease
// runs out and the worker queues them.
func (q *Queue) Stranded() int64 { return q.stranded.Load() }

// EnqueueOrder implements ports.OrderQueue: in the background if it can; inline it returns
// the inner queue's answer.
func (q *Queue) EnqueueOrder(ctx context.Context, r domain.Reservation) error {
	q.mu.RLock()
	if q.running {
		select {
		case q.ch <- r:
			q.mu.RUnlock()
			return nil
		default:
		}
	}
	q.mu.RUnlock()
	return q.enqueue(ctx, r)
}

func (q *Queue) enqueue(ctx context.Context, r domain.Reservation) error {
	ctx = context.WithoutCancel(ctx)
	attempts := max(q.cfg.Attempts, 1)
	var err error
	for attempt := range attempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
		}
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = q.OrderQueue.EnqueueOrder(tctx, r)
		cancel()
		if err == nil || errors.Is(err, ports.ErrAlreadyQueued) {
			return err
		}
	}
	q.stranded.Add(1)
	q.log.ErrorContext(ctx, "order accepted but not queued; the reconciler will queue it",
		"order_id", r.OrderID, "attempts", attempts, "err", err)
	return err
}
