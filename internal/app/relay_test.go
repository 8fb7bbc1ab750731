package app_test

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

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// freshEvents puts n events created now in the outbox.
func (e *env) freshEvents(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		e.outbox.add(domain.Event{ID: ids[i], TenantID: e.tenant.ID, Topic: domain.TopicOrderConfirmed,
			Key: ids[i].String(), Type: domain.EventOrderConfirmed, Payload: []byte(`{}`), CreatedAt: e.clock.Now()})
	}
	return ids
}

// TestRelayStatusFollowsPublishing: the relay is healthy while it publishes or has nothing
// waiting, and unhealthy once events have waited UnhealthyAfter with nothing published for as
// long, saying why; it is healthy again as soon as a batch goes out.
func TestRelayStatusFollowsPublishing(t *testing.T) {
	t.Parallel()
	const after = 30 * time.Second
	e := newEnvWith(t, func(s *app.Settings) { s.RelayBatch, s.RelayUnhealthyAfter = 10, after })
	relay := e.app.RelayOutbox
	if s := relay.Status(); !s.Healthy {
		t.Fatalf("before the first pass: %+v, want healthy", s)
	}

	// Nothing waits: healthy however long nothing is published.
	if _, err := relay.Handle(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := relay.Handle(ctx); err != nil {
		t.Fatal(err)
	}
	if s := relay.Status(); !s.Healthy || s.Pending != 0 {
		t.Fatalf("an empty outbox: %+v, want healthy", s)
	}

	// The broker refuses everything: healthy until the events have waited `after`.
	e.freshEvents(3)
	e.publisher.OnPublish = func(int, []domain.Event) error { return errBoom }
	for range 2 {
		e.clock.Advance(after / 2)
		if _, err := relay.Handle(ctx); !errors.Is(err, errBoom) {
			t.Fatalf("relay = %v, want the publish error", err)
		}
	}
	e.clock.Advance(time.Second)
	if _, err := relay.Handle(ctx); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	s := relay.Status()
	if s.Healthy || s.Pending != 3 || !strings.Contains(s.Problem, "3 events waiting") || !strings.Contains(s.Problem, errBoom.Error()) {
		t.Fatalf("after %s of refusals: %+v, want unhealthy, naming the backlog and the error", after, s)
	}

	// The broker is back: one batch out and the relay is healthy.
	e.publisher.OnPublish = nil
	e.clock.Advance(time.Second)
	if n, err := relay.Handle(ctx); err != nil || n != 3 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	s = relay.Status()
	if !s.Healthy || s.Pending != 0 || s.Published != 3 || !s.LastPublish.Equal(e.clock.Now()) {
		t.Fatalf("after the broker came back: %+v, want healthy, 3 published just now", s)
	}
}

// A long backlog that drains is healthy however old its oldest event: batches go out.
func TestRelayStatusHealthyWhileABacklogDrains(t *testing.T) {
	t.Parallel()
	const after = 30 * time.Second
	e := newEnvWith(t, func(s *app.Settings) { s.RelayBatch, s.RelayUnhealthyAfter = 2, after })
	e.outboxEvents(7) // the oldest 7 minutes old
	calls := 0
	e.publisher.OnPublish = func(int, []domain.Event) error {
		if calls++; calls > 1 {
			return errBoom // one batch a pass
		}
		return nil
	}
	for range 3 {
		calls = 0
		e.clock.Advance(after / 2)
		_, _ = e.app.RelayOutbox.Handle(ctx)
		if s := e.app.RelayOutbox.Status(); !s.Healthy {
			t.Fatalf("a backlog draining a batch a pass: %+v, want healthy", s)
		}
	}
}

// A relay whose passes stopped ending (stuck on the database) is unhealthy.
func TestRelayStatusUnhealthyWhenPassesStop(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *app.Settings) { s.RelayUnhealthyAfter = 30 * time.Second })
	if _, err := e.app.RelayOutbox.Handle(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * time.Second)
	if s := e.app.RelayOutbox.Status(); s.Healthy || !strings.Contains(s.Problem, "no relay pass") {
		t.Fatalf("no pass for 31s: %+v, want unhealthy", s)
	}
}

// fakeBroker is the broker's incarnation as ports.BrokerWatcher reports it.
type fakeBroker struct {
	mu          sync.Mutex
	incarnation string
	err         error
}

var _ ports.BrokerWatcher = (*fakeBroker)(nil)

func (f *fakeBroker) Incarnation(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.incarnation, f.err
}

func (f *fakeBroker) set(incarnation string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.incarnation, f.err = incarnation, err
}

// fakeRecovery is the in-memory store's ResendLost (a broker that lost everything marks every
// event published since unpublished), recording the incarnations it is told of and failing with
// err when set.
type fakeRecovery struct {
	outbox *fakeOutbox
	mu     sync.Mutex
	told   []string
	err    error
}

var _ ports.OutboxRecovery = (*fakeRecovery)(nil)

func (f *fakeRecovery) ResendLost(ctx context.Context, incarnation string, margin time.Duration) (int, error) {
	f.mu.Lock()
	f.told = append(f.told, incarnation)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if margin <= 0 {
		return 0, errors.New("no margin for batches in flight")
	}
	return f.outbox.mem.ResendLost(ctx, incarnation, margin)
}

func (f *fakeRecovery) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.told)
}

// TestRelayResendsWhatTheBrokerLost: before publishing, each pass compares the broker's
// incarnation with the one it recorded. Unchanged, nothing more happens; changed (the broker
// restarted empty), the events published to the lost one go back in the outbox and out again in
// the same pass. A broker that does not answer is left to the publish; a failed recovery is
// tried again at the next pass.
func TestRelayResendsWhatTheBrokerLost(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, nil)
	broker := &fakeBroker{incarnation: "A"}
	recovery := &fakeRecovery{outbox: e.outbox}
	relay := e.app.RelayOutbox
	relay.Broker, relay.Recovery = broker, recovery

	ids := e.freshEvents(4)
	if n, err := relay.Handle(ctx); err != nil || n != 4 {
		t.Fatalf("first pass = %d, %v", n, err)
	}
	if n, err := relay.Handle(ctx); err != nil || n != 0 {
		t.Fatalf("second pass = %d, %v", n, err)
	}
	if got := recovery.calls(); !slices.Equal(got, []string{"A"}) {
		t.Fatalf("recovery told %v, want the first incarnation once", got)
	}

	// The broker does not answer: no recovery, the publish goes ahead.
	e.clock.Advance(time.Second) // the broker is asked once a second (RelayWatchEvery)
	broker.set("", errors.New("connection refused"))
	more := e.freshEvents(1)
	if n, err := relay.Handle(ctx); err != nil || n != 1 {
		t.Fatalf("pass with the broker watcher failing = %d, %v", n, err)
	}

	// Restarted empty: the five published events are sent again, in this pass.
	broker.set("B", nil)
	recovery.mu.Lock()
	recovery.err = errBoom
	recovery.mu.Unlock()
	if n, err := relay.Handle(ctx); err != nil || n != 0 {
		t.Fatalf("pass with the recovery failing = %d, %v", n, err)
	}
	recovery.mu.Lock()
	recovery.err = nil
	recovery.mu.Unlock()
	if n, err := relay.Handle(ctx); err != nil || n != 5 {
		t.Fatalf("pass after the broker restarted empty = %d, %v, want the 5 lost events sent again", n, err)
	}
	if got := recovery.calls(); !slices.Equal(got, []string{"A", "B", "B"}) {
		t.Fatalf("recovery told %v, want A, then B twice (the failure, the retry)", got)
	}
	delivered := e.publisher.deliveredIDs()
	want := append(append(slices.Clone(ids), more...), append(slices.Clone(ids), more...)...)
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	slices.SortFunc(delivered, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(delivered, want) {
		t.Fatalf("delivered %v, want every event twice", delivered)
	}
	if s := relay.Status(); s.Resent != 5 || s.Published != 10 {
		t.Fatalf("status %+v, want 5 resent and 10 published", s)
	}
	if e.log.loggedFor(slog.LevelWarn, "restarted empty", "events", "5") != 1 {
		t.Error("the resend is not logged")
	}
	if n, err := relay.Handle(ctx); err != nil || n != 0 || len(recovery.calls()) != 3 {
		t.Fatalf("a pass after the resend = %d, %v (recovery told %v), want nothing more", n, err, recovery.calls())
	}
}
