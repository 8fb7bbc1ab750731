package dispatch_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/dispatch"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// gatedQueue is an order queue whose EnqueueOrder reports each call on started and then waits
// for release (if set) before answering err.
type gatedQueue struct {
	ports.OrderQueue // only EnqueueOrder is called
	started          chan uuid.UUID
	release          chan struct{}
	err              error

	mu     sync.Mutex
	queued []uuid.UUID
	calls  int
}

func (q *gatedQueue) EnqueueOrder(_ context.Context, r domain.Reservation) error {
	q.mu.Lock()
	q.calls++
	q.mu.Unlock()
	if q.started != nil {
		q.started <- r.OrderID
	}
	if q.release != nil {
		<-q.release
	}
	if q.err != nil {
		return q.err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queued = append(q.queued, r.OrderID)
	return nil
}

// errorLog keeps the messages logged at error level.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Level == slog.LevelError {
		l.msgs = append(l.msgs, r.Message)
	}
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func dispatcherWith(q ports.OrderQueue, log *errorLog, cfg dispatch.Config) *dispatch.Queue {
	return dispatch.New(q, cfg, slog.New(log))
}

// TestDispatcherSizesComeFromConfig: one worker and a buffer of one hold two orders; the third
// is queued inline by its caller, not dropped and not waiting for the worker.
func TestDispatcherSizesComeFromConfig(t *testing.T) {
	q := &gatedQueue{started: make(chan uuid.UUID, 3), release: make(chan struct{})}
	d := dispatcherWith(q, &errorLog{}, dispatch.Config{Workers: 1, Buffer: 1, Attempts: 3})
	d.Start()
	ctx := context.Background()
	orders := []domain.Reservation{{OrderID: uuid.New()}, {OrderID: uuid.New()}, {OrderID: uuid.New()}}

	_ = d.EnqueueOrder(ctx, orders[0])
	if got := <-q.started; got != orders[0].OrderID {
		t.Fatalf("the worker took %v first, want %v", got, orders[0].OrderID)
	}
	_ = d.EnqueueOrder(ctx, orders[1]) // waits in the buffer: the only worker is busy
	inline := make(chan struct{})
	go func() { _ = d.EnqueueOrder(ctx, orders[2]); close(inline) }()
	select {
	case got := <-q.started:
		if got != orders[2].OrderID {
			t.Fatalf("second call queued %v, want the inline %v", got, orders[2].OrderID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a full buffer did not make the caller queue inline")
	}
	close(q.release)
	<-inline
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queued) != 3 {
		t.Fatalf("queued %v, want all 3 orders", q.queued)
	}
}

// TestDispatcherTriesAttemptsTimes: a queue that keeps failing is tried Attempts times,
// then the order is left to the reconciler, loudly, and counted stranded.
func TestDispatcherTriesAttemptsTimes(t *testing.T) {
	q := &gatedQueue{err: errors.New("redis busy")}
	log := &errorLog{}
	d := dispatcherWith(q, log, dispatch.Config{Workers: 8, Buffer: 10, Attempts: 2})
	err := d.EnqueueOrder(context.Background(), domain.Reservation{OrderID: uuid.New()}) // not started: inline
	if err == nil || d.Stranded() != 1 {
		t.Fatalf("inline enqueue = %v, stranded %d; want the queue's error and 1 stranded", err, d.Stranded())
	}
	if q.calls != 2 {
		t.Fatalf("%d tries, want Attempts (2)", q.calls)
	}
	if len(log.msgs) != 1 || !strings.Contains(log.msgs[0], "not queued") {
		t.Fatal("an order left to the reconciler must be logged as an error")
	}
}

// TestRecent: the orders of a sale accepted within Recent are listed, oldest first; another
// sale's are not, nor orders beyond RecentMax or older than Recent.
func TestRecent(t *testing.T) {
	q := &gatedQueue{}
	d := dispatcherWith(q, &errorLog{}, dispatch.Config{Attempts: 1, Recent: 300 * time.Millisecond, RecentMax: 3})
	ctx := context.Background()
	tenant, sale, other := uuid.New(), uuid.New(), uuid.New()
	order := func(saleID uuid.UUID) domain.Reservation {
		r := domain.Reservation{OrderID: uuid.New(), TenantID: tenant, SaleID: saleID}
		if err := d.EnqueueOrder(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := order(sale)
	time.Sleep(400 * time.Millisecond) // old is no longer recent
	var recent []uuid.UUID
	for range 4 {
		recent = append(recent, order(sale).OrderID)
	}
	order(other)
	var got []uuid.UUID
	for _, r := range d.Recent(tenant, sale) {
		got = append(got, r.OrderID)
	}
	if want := recent[1:]; !slices.Equal(got, want) {
		t.Fatalf("recent %v, want the 3 most recent (RecentMax) %v (not %s, too old, nor the other sale's)", got, want, old.OrderID)
	}
}

// TestRecentOff: with Recent 0 nothing is remembered.
func TestRecentOff(t *testing.T) {
	d := dispatcherWith(&gatedQueue{}, &errorLog{}, dispatch.Config{Attempts: 1})
	tenant, sale := uuid.New(), uuid.New()
	if err := d.EnqueueOrder(context.Background(), domain.Reservation{OrderID: uuid.New(), TenantID: tenant, SaleID: sale}); err != nil {
		t.Fatal(err)
	}
	if got := d.Recent(tenant, sale); len(got) != 0 {
		t.Fatalf("Recent = %v with Recent 0, want none", got)
	}
}
