package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// The outbox is seen through its port: Backlog counts what waits, RelayPending hands it over.

var orderEventCases = []testCase{
	{"ConfirmedOrderEventWrittenOnce", testConfirmedOrderEventOnce},
	{"FailedOrderNoEventUntilConfirmed", testFailedThenConfirmedEvents},
	{"RefusedOrderNoEvent", testRefusedOrderNoEvent},
	{"NoneGivenNoneWritten", testNoEventsGiven},
	{"TwoGivenBothWrittenOnce", testTwoEventsGiven},
	{"TwoGivenToAReplacedFailureBothWritten", testTwoEventsOnReplacedFailure},
	{"AnEventRefusedNothingWritten", testEventRefused},
}

var outboxCases = []testCase{
	{"RelayOldestFirstInBatches", testRelayOldestFirst},
	{"RelayPublishFailureKeepsTheEvents", testRelayPublishFailure},
	{"ConcurrentRelaysSkipHeldEvents", testConcurrentRelays},
	{"Backlog", testBacklog},
}

// pending is how many events wait in the outbox.
func (f *Fixture) pending(want int) {
	f.T.Helper()
	n, _, err := f.St.Backlog(f.Ctx)
	if err != nil || n != want {
		f.T.Fatalf("Backlog = %d, %v, want %d events waiting", n, err, want)
	}
}

// relayAll publishes everything waiting and returns it as handed over.
func (f *Fixture) relayAll() []domain.Event {
	f.T.Helper()
	var got []domain.Event
	n, err := f.St.RelayPending(f.Ctx, 1000, func(_ context.Context, events []domain.Event) error {
		got = append(got, events...)
		return nil
	})
	if err != nil || n != len(got) {
		f.T.Fatalf("RelayPending = %d, %v, handing over %d events", n, err, len(got))
	}
	return got
}

// checkEvents fails unless got are want, in order, as given (the payload compared as JSON).
func checkEvents(t *testing.T, got, want []domain.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, e := range want {
		g := got[i]
		if g.ID != e.ID || g.TenantID != e.TenantID || g.Topic != e.Topic || g.Key != e.Key || g.Type != e.Type ||
			!g.CreatedAt.Equal(e.CreatedAt) || !sameJSON(t, g.Payload, e.Payload) {
			t.Fatalf("event %d = %s %s/%s key %s tenant %s at %v payload %s;\nwant %s %s/%s key %s tenant %s at %v payload %s",
				i, g.ID, g.Topic, g.Type, g.Key, g.TenantID, g.CreatedAt, g.Payload,
				e.ID, e.Topic, e.Type, e.Key, e.TenantID, e.CreatedAt, e.Payload)
		}
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("payload %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("payload %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// auditEvent is an event of o's tenant other than order.confirmed, a minute older than now.
func auditEvent(o domain.Order, now time.Time) domain.Event {
	return domain.Event{ID: uuid.New(), TenantID: o.TenantID, Topic: "order.audited", Key: "audit-" + o.ID.String(),
		Type: "order.audited", Payload: []byte(`{"orderId":"` + o.ID.String() + `","units":2}`), CreatedAt: now.Add(-time.Minute)}
}

func testConfirmedOrderEventOnce(t *testing.T, f *Fixture) {
	w := f.World()
	o := w.Unsaved(2, f.Now)
	f.Save(o, true, ConfirmedEvent(o))
	f.pending(1)
	// Saved again (a redelivered task), even with a later confirmation time or other values:
	// no second event.
	f.Save(o, false, ConfirmedEvent(o))
	later := o
	c := o.ConfirmedAt.Add(time.Minute)
	later.ConfirmedAt, later.Quantity, later.AmountCents = &c, 1, 1999
	f.Save(later, false, ConfirmedEvent(later))
	f.pending(1)
	checkEvents(t, f.relayAll(), []domain.Event{ConfirmedEvent(o)})
	f.Save(o, false, ConfirmedEvent(o))
	f.pending(0)
}

func testFailedThenConfirmedEvents(t *testing.T, f *Fixture) {
	w := f.World()
	failed := f.Order(w.Sale, w.Buyer, 1, "retried", domain.OrderFailed, f.Now)
	f.Save(failed, true)
	f.Save(failed, false)
	f.pending(0)
	confirmed := f.Order(w.Sale, w.Buyer, 1, "retried", domain.OrderConfirmed, f.Now)
	confirmed.ID = failed.ID
	f.Save(confirmed, false, ConfirmedEvent(confirmed))
	f.pending(1)
	// The confirmation redelivered, and a stale failure: still one event.
	f.Save(confirmed, false, ConfirmedEvent(confirmed))
	f.Save(failed, false)
	checkEvents(t, f.relayAll(), []domain.Event{ConfirmedEvent(confirmed)})
}

func testRefusedOrderNoEvent(t *testing.T, f *Fixture) {
	w := f.World()
	first := f.Order(w.Sale, w.Buyer, 1, "shared-key", domain.OrderConfirmed, f.Now)
	f.Save(first, true, ConfirmedEvent(first))
	second := f.Order(w.Sale, w.Buyer, 2, "shared-key", domain.OrderConfirmed, f.Now.Add(time.Second))
	if created, err := f.St.SaveOrder(f.Ctx, second, ConfirmedEvent(second)); !errors.Is(err, domain.ErrPermanent) || created {
		t.Fatalf("SaveOrder(key taken) = %v, %v, want ErrPermanent", created, err)
	}
	unknownSale := f.Order(w.Sale, w.Buyer, 1, "other-key", domain.OrderConfirmed, f.Now)
	unknownSale.SaleID = uuid.New()
	if _, err := f.St.SaveOrder(f.Ctx, unknownSale, ConfirmedEvent(unknownSale)); !errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("SaveOrder(unknown sale) = %v, want ErrPermanent", err)
	}
	checkEvents(t, f.relayAll(), []domain.Event{ConfirmedEvent(first)})
}

// The repository has no rule of its own about events: it writes exactly the events it is given.
func testNoEventsGiven(t *testing.T, f *Fixture) {
	w := f.World()
	failed := f.Order(w.Sale, w.Buyer, 1, "failed", domain.OrderFailed, f.Now)
	f.Save(failed, true)
	confirmed := f.Order(w.Sale, w.Buyer, 1, "confirmed", domain.OrderConfirmed, f.Now)
	f.Save(confirmed, true)
	replaced := f.Order(w.Sale, w.Buyer, 1, "replaced", domain.OrderFailed, f.Now)
	f.Save(replaced, true)
	replaced.Status, replaced.ConfirmedAt = domain.OrderConfirmed, confirmed.ConfirmedAt
	f.Save(replaced, false)
	f.pending(0)
	CheckOrder(t, f.ReadOrder(confirmed), confirmed)
	CheckOrder(t, f.ReadOrder(replaced), replaced)
}

func testTwoEventsGiven(t *testing.T, f *Fixture) {
	w := f.World()
	o := w.Unsaved(2, f.Now)
	audit := auditEvent(o, f.Now)
	f.Save(o, true, ConfirmedEvent(o), audit)
	f.pending(2)
	// Redelivered with the same events: the row is unchanged, so no event is written again.
	f.Save(o, false, ConfirmedEvent(o), audit)
	f.pending(2)
	checkEvents(t, f.relayAll(), []domain.Event{audit, ConfirmedEvent(o)}) // oldest first
}

func testTwoEventsOnReplacedFailure(t *testing.T, f *Fixture) {
	w := f.World()
	failed := f.Order(w.Sale, w.Buyer, 1, "retried", domain.OrderFailed, f.Now)
	f.Save(failed, true)
	confirmed := f.Order(w.Sale, w.Buyer, 1, "retried", domain.OrderConfirmed, f.Now)
	confirmed.ID = failed.ID
	audit := auditEvent(confirmed, f.Now)
	f.Save(confirmed, false, ConfirmedEvent(confirmed), audit)
	checkEvents(t, f.relayAll(), []domain.Event{audit, ConfirmedEvent(confirmed)})
}

func testEventRefused(t *testing.T, f *Fixture) {
	w := f.World()
	o := w.Unsaved(1, f.Now)
	stray := auditEvent(o, f.Now)
	stray.TenantID = uuid.New() // of a tenant that does not exist
	created, err := f.St.SaveOrder(f.Ctx, o, ConfirmedEvent(o), stray)
	if !errors.Is(err, domain.ErrPermanent) || created {
		t.Fatalf("SaveOrder(an event of an unknown tenant) = %v, %v, want an error wrapping ErrPermanent", created, err)
	}
	if _, err := f.St.Order(f.Ctx, o.TenantID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("order stored though its events were refused: %v", err)
	}
	f.pending(0)
}

func testRelayOldestFirst(t *testing.T, f *Fixture) {
	w := f.World()
	base := f.Now.Add(-time.Hour)
	// Saved out of order: the relay goes by the event time, not by insertion.
	var want []domain.Event
	for _, k := range []int{3, 1, 4, 0, 2} {
		want = append(want, ConfirmedEvent(w.Confirmed(1+k%2, base.Add(time.Duration(k)*time.Minute))))
	}
	slices.SortFunc(want, func(a, b domain.Event) int { return a.CreatedAt.Compare(b.CreatedAt) })

	var batches [][]domain.Event
	publish := func(_ context.Context, events []domain.Event) error {
		batches = append(batches, slices.Clone(events))
		return nil
	}
	for i, n := range []int{2, 2, 1, 0} {
		got, err := f.St.RelayPending(f.Ctx, 2, publish)
		if err != nil || got != n {
			t.Fatalf("relay pass %d = %d, %v, want %d, nil", i+1, got, err, n)
		}
	}
	if len(batches) != 3 {
		t.Fatalf("publish called %d times, want 3 (never with an empty batch)", len(batches))
	}
	var got []domain.Event
	for i, b := range batches {
		if n := []int{2, 2, 1}[i]; len(b) != n {
			t.Fatalf("batch %d has %d events, want %d", i+1, len(b), n)
		}
		got = append(got, b...)
	}
	checkEvents(t, got, want)
	if pending, oldest, err := f.St.Backlog(f.Ctx); err != nil || pending != 0 || oldest != 0 {
		t.Fatalf("Backlog = %d, %v, %v, want 0, 0", pending, oldest, err)
	}
	// A new event is the only one the next pass sees.
	fresh := w.Confirmed(1, f.Now)
	checkEvents(t, f.relayAll(), []domain.Event{ConfirmedEvent(fresh)})
}

func testRelayPublishFailure(t *testing.T, f *Fixture) {
	w := f.World()
	var want []domain.Event
	for i := range 3 {
		want = append(want, ConfirmedEvent(w.Confirmed(1, f.Now.Add(time.Duration(i)*time.Second))))
	}
	errBroker := errors.New("broker unreachable")
	for attempt := 1; attempt <= 2; attempt++ {
		var handed []domain.Event
		n, err := f.St.RelayPending(f.Ctx, 10, func(_ context.Context, events []domain.Event) error {
			handed = events
			return errBroker
		})
		if !errors.Is(err, errBroker) || n != 0 {
			t.Fatalf("relay attempt %d = %d, %v, want 0 and the publish error", attempt, n, err)
		}
		checkEvents(t, handed, want)
		f.pending(3)
	}
	// The broker is back: the same events go out.
	checkEvents(t, f.relayAll(), want)
	f.pending(0)
}

// Two relays at once (two nodes) never hand the same event to the broker: events the first
// holds are skipped by the second, which takes the next ones.
func testConcurrentRelays(t *testing.T, f *Fixture) {
	w := f.World()
	var all []uuid.UUID
	for i := range 6 {
		all = append(all, ConfirmedEvent(w.Confirmed(1, f.Now.Add(time.Duration(i)*time.Second))).ID)
	}

	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // never leave a relay hanging on a failed assertion

	type result struct {
		n   int
		err error
	}
	// relay starts a relay whose publish reports its batch and waits for release.
	relay := func(limit int) (<-chan []uuid.UUID, <-chan result) {
		batch, done := make(chan []uuid.UUID, 1), make(chan result, 1)
		go func() {
			n, err := f.St.RelayPending(f.Ctx, limit, func(_ context.Context, events []domain.Event) error {
				ids := make([]uuid.UUID, len(events))
				for i, e := range events {
					ids[i] = e.ID
				}
				batch <- ids
				<-release
				return nil
			})
			done <- result{n, err}
		}()
		return batch, done
	}
	await := func(what string, ch <-chan []uuid.UUID) []uuid.UUID {
		t.Helper()
		select {
		case ids := <-ch:
			return ids
		case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
			t.Fatalf("%s never reached publish", what)
			return nil
		}
	}

	batchA, doneA := relay(4)
	gotA := await("relay A", batchA)
	batchB, doneB := relay(10) // starts while A holds its events
	gotB := await("relay B", batchB)
	if !slices.Equal(gotA, all[:4]) {
		t.Fatalf("relay A got %v, want the 4 oldest %v", gotA, all[:4])
	}
	if !slices.Equal(gotB, all[4:]) {
		t.Fatalf("relay B got %v, want the 2 events A did not hold %v", gotB, all[4:])
	}
	// A third relay meanwhile finds every event held and publishes nothing; the held events
	// still count as waiting.
	n, err := f.St.RelayPending(f.Ctx, 10, func(_ context.Context, events []domain.Event) error {
		t.Errorf("third relay was handed %d held events", len(events))
		return nil
	})
	if err != nil || n != 0 {
		t.Fatalf("third relay = %d, %v, want 0, nil", n, err)
	}
	f.pending(6)

	unblock()
	for name, want := range map[string]struct {
		ch <-chan result
		n  int
	}{"A": {doneA, 4}, "B": {doneB, 2}} {
		select {
		case r := <-want.ch:
			if r.err != nil || r.n != want.n {
				t.Fatalf("relay %s = %d, %v, want %d, nil", name, r.n, r.err, want.n)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("relay %s never returned", name)
		}
	}
	f.pending(0)
	if got := f.relayAll(); len(got) != 0 {
		t.Fatalf("relay after both handed over %d events, want none", len(got))
	}
}

func testBacklog(t *testing.T, f *Fixture) {
	w := f.World()
	if pending, oldest, err := f.St.Backlog(f.Ctx); err != nil || pending != 0 || oldest != 0 {
		t.Fatalf("empty Backlog = %d, %v, %v, want 0, 0", pending, oldest, err)
	}
	// Events are dated by their confirmation (a second after the order's creation).
	w.Confirmed(1, f.Now.Add(-time.Hour-time.Second))
	w.Confirmed(1, f.Now.Add(-10*time.Minute-time.Second))
	w.Confirmed(1, f.Now.Add(-time.Second))
	// The age is measured against the store's clock: bounds, not exact values.
	checkBacklog := func(wantPending int, atLeast time.Duration) {
		t.Helper()
		pending, oldest, err := f.St.Backlog(f.Ctx)
		if err != nil || pending != wantPending || oldest < atLeast || oldest > atLeast+time.Minute {
			t.Fatalf("Backlog = %d, %v, %v, want %d, between %v and %v", pending, oldest, err, wantPending,
				atLeast, atLeast+time.Minute)
		}
	}
	checkBacklog(3, time.Hour)
	if n, err := f.St.RelayPending(f.Ctx, 1, func(context.Context, []domain.Event) error { return nil }); err != nil || n != 1 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	checkBacklog(2, 10*time.Minute)
	// A failed publish keeps them in the backlog.
	if _, err := f.St.RelayPending(f.Ctx, 5, func(context.Context, []domain.Event) error { return errors.New("down") }); err == nil {
		t.Fatal("relay with a failing publish returned nil")
	}
	checkBacklog(2, 10*time.Minute)
}
