// Package dispatch is an asynchronous decorator of ports.OrderQueue for the purchase path: an
// accepted order is handed to a buffer and queued by background workers, so the shopper's answer
// need not wait for the queue. The reservation is durable already (the inventory records it, and
// the worker queues what a dead node held), so a buffered order is not at risk.
//
// It also remembers the orders it took lately (Config.Recent), the one copy of them outside
// Redis until the worker writes them: if Redis rolls back, losing their reservations and their
// queued tasks, the node takes their stock and queues them again (ports.Dispatcher.Recent).
package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

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
	// Recent is how long accepted orders are remembered for RequeueRecent (0: not at all), and
	// RecentMax how many at most per sale (0: no bound).
	Recent    time.Duration
	RecentMax int
}

// Queue decorates an OrderQueue: EnqueueOrder buffers the order and answers at once; when the
// buffer is full, or the dispatcher is not running, it queues inline (back-pressure instead of
// loss). Every other method is the inner queue's.
type Queue struct {
	ports.OrderQueue
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex
	ch       chan dispatched
	running  bool
	wg       sync.WaitGroup
	stranded atomic.Int64

	recentMu sync.Mutex
	recent   map[saleKey]*recentList
	now      func() time.Time
}

// dispatched is an accepted order on its way to the inner queue, with the values of the
// request that accepted it (its trace, so the order stays in the purchase's trace) but not its
// cancellation: the request has been answered by then.
type dispatched struct {
	ctx context.Context
	r   domain.Reservation
}

// recentList is a sale's recent orders, oldest first, from head on.
type recentList struct {
	items []accepted
	head  int
}

type saleKey struct{ tenant, sale uuid.UUID }

// accepted is an order taken at a time.
type accepted struct {
	at time.Time
	r  domain.Reservation
}

var _ ports.Dispatcher = (*Queue)(nil)

// New decorates inner.
func New(inner ports.OrderQueue, cfg Config, log *slog.Logger) *Queue {
	return &Queue{OrderQueue: inner, cfg: cfg, log: log, recent: map[saleKey]*recentList{}, now: time.Now}
}

// Start runs the workers.
func (q *Queue) Start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ch = make(chan dispatched, max(q.cfg.Buffer, 0))
	q.running = true
	for range max(q.cfg.Workers, 1) {
		q.wg.Go(func() {
			for d := range q.ch {
				_ = q.enqueue(d.ctx, d.r)
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
	q.remember(r)
	return q.dispatch(ctx, r)
}

func (q *Queue) dispatch(ctx context.Context, r domain.Reservation) error {
	q.mu.RLock()
	if q.running {
		select {
		case q.ch <- dispatched{ctx: context.WithoutCancel(ctx), r: r}:
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

// remember keeps r among the recent orders of its sale, forgetting those older than Recent
// and the oldest beyond RecentMax.
func (q *Queue) remember(r domain.Reservation) {
	if q.cfg.Recent <= 0 {
		return
	}
	k := saleKey{r.TenantID, r.SaleID}
	now := q.now()
	q.recentMu.Lock()
	defer q.recentMu.Unlock()
	l := q.recent[k]
	if l == nil {
		l = &recentList{}
		q.recent[k] = l
		for other, ol := range q.recent { // sales no longer bought from
			if last := len(ol.items) - 1; other != k && (last < ol.head || now.Sub(ol.items[last].at) > q.cfg.Recent) {
				delete(q.recent, other)
			}
		}
	}
	l.items = append(l.items, accepted{at: now, r: r})
	for l.head < len(l.items) && now.Sub(l.items[l.head].at) > q.cfg.Recent {
		l.head++
	}
	if q.cfg.RecentMax > 0 {
		l.head = max(l.head, len(l.items)-q.cfg.RecentMax)
	}
	if l.head > len(l.items)/2 { // compact, so that forgotten orders do not pin the array
		l.items = append([]accepted(nil), l.items[l.head:]...)
		l.head = 0
	}
}

// Recent implements ports.Dispatcher: the sale's orders accepted within Recent, at most
// RecentMax of them.
func (q *Queue) Recent(tenantID, saleID uuid.UUID) []domain.Reservation {
	now := q.now()
	q.recentMu.Lock()
	defer q.recentMu.Unlock()
	var out []domain.Reservation
	if l := q.recent[saleKey{tenantID, saleID}]; l != nil {
		for _, a := range l.items[l.head:] {
			if now.Sub(a.at) <= q.cfg.Recent {
				out = append(out, a.r)
			}
		}
	}
	return out
}
