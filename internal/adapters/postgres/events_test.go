package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// outboxRow is one outbox row as stored.
type outboxRow struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	Topic       string
	Key         string
	Type        string
	Payload     []byte
	CreatedAt   time.Time
	PublishedAt *time.Time
	Attempts    int
	LastError   *string
}

// outbox reads every outbox row, oldest first.
func (f *fixture) outbox() []outboxRow {
	f.t.Helper()
	rows, err := f.st.Pool().Query(f.ctx, `SELECT id, tenant_id, topic, key, type, payload, created_at, published_at,
		attempts, last_error FROM outbox ORDER BY created_at, id`)
	if err != nil {
		f.t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Topic, &r.Key, &r.Type, &r.Payload, &r.CreatedAt, &r.PublishedAt,
			&r.Attempts, &r.LastError); err != nil {
			f.t.Fatalf("scan outbox: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatalf("read outbox: %v", err)
	}
	return out
}

// count runs a SELECT count(*) query.
func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.st.Pool().QueryRow(f.ctx, query, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func decodePayload(t *testing.T, b []byte) domain.OrderConfirmedV1 {
	t.Helper()
	e, err := domain.DecodeOrderConfirmed(b)
	if err != nil {
		t.Fatalf("payload %s: %v", b, err)
	}
	return e
}

// confirmedEvent is the event the write-order use case saves with a confirmed order.
func confirmedEvent(o domain.Order) domain.Event {
	return domain.OrderConfirmedEvent(o, *o.ConfirmedAt)
}

// checkEventOf checks that row is the order.confirmed event of o, confirmed at *o.ConfirmedAt.
func checkEventOf(t *testing.T, row outboxRow, o domain.Order) {
	t.Helper()
	want := domain.OrderConfirmedEvent(o, *o.ConfirmedAt)
	if row.ID != want.ID || row.TenantID != o.TenantID || row.Topic != domain.TopicOrderConfirmed ||
		row.Key != o.ID.String() || row.Type != domain.EventOrderConfirmed || !row.CreatedAt.Equal(*o.ConfirmedAt) {
		t.Fatalf("outbox row %+v, want id %s tenant %s topic %s key %s type %s created %v", row, want.ID, o.TenantID,
			domain.TopicOrderConfirmed, o.ID, domain.EventOrderConfirmed, *o.ConfirmedAt)
	}
	got := decodePayload(t, row.Payload)
	if !got.OccurredAt.Equal(*o.ConfirmedAt) || !got.OrderedAt.Equal(o.CreatedAt) {
		t.Fatalf("payload times occurred %v ordered %v, want %v and %v", got.OccurredAt, got.OrderedAt, *o.ConfirmedAt, o.CreatedAt)
	}
	got.OccurredAt, got.OrderedAt = time.Time{}, time.Time{}
	exp := domain.OrderConfirmedV1{
		EventID: want.ID, Type: domain.EventOrderConfirmed, Version: 1, TenantID: o.TenantID, OrderID: o.ID,
		SaleID: o.SaleID, UserID: o.UserID, Quantity: o.Quantity, UnitPriceCents: o.UnitPriceCents,
		AmountCents: o.AmountCents, Currency: o.Currency,
	}
	if got != exp {
		t.Fatalf("payload %+v, want %+v", got, exp)
	}
}

func checkUnpublished(t *testing.T, row outboxRow, attempts int, lastError *string) {
	t.Helper()
	if row.PublishedAt != nil || row.Attempts != attempts || (row.LastError == nil) != (lastError == nil) ||
		(lastError != nil && *row.LastError != *lastError) {
		t.Fatalf("row %s: published %v attempts %d last error %v, want unpublished, %d attempts, last error %v",
			row.ID, row.PublishedAt, row.Attempts, row.LastError, attempts, lastError)
	}
}

// eventWorld is a tenant with a sale and a buyer.
type eventWorld struct {
	f    *fixture
	sale domain.Sale
	user domain.User
}

func newEventWorld(t *testing.T) *eventWorld {
	t.Helper()
	f := newFixture(t)
	tn := f.tenant("shop")
	return &eventWorld{f: f, sale: f.sale(tn.ID, "drop", -time.Hour, 2*time.Hour, 0), user: f.user(tn.ID, "buyer@example.com")}
}

// confirmed saves a confirmed order created at created (confirmed a second later), with its event.
func (w *eventWorld) confirmed(qty int, created time.Time) domain.Order {
	w.f.t.Helper()
	o := w.f.order(w.sale, w.user, qty, uuid.NewString(), domain.OrderConfirmed, created)
	w.f.save(o, true, confirmedEvent(o))
	return o
}

func TestSaveOrderWritesOutboxEvent(t *testing.T) {
	t.Parallel()

	t.Run("confirmed order: one event, written once", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		o := f.order(w.sale, w.user, 2, "k1", domain.OrderConfirmed, f.now)
		f.save(o, true, confirmedEvent(o))
		rows := f.outbox()
		if len(rows) != 1 {
			t.Fatalf("%d outbox rows, want 1", len(rows))
		}
		checkEventOf(t, rows[0], o)
		checkUnpublished(t, rows[0], 0, nil)

		// Saved again (a redelivered task), even with a later confirmation time or other values:
		// no second row, the first untouched.
		f.save(o, false, confirmedEvent(o))
		later := o
		c := o.ConfirmedAt.Add(time.Minute)
		later.ConfirmedAt, later.Quantity, later.AmountCents = &c, 1, 1999
		f.save(later, false, confirmedEvent(later))
		again := f.outbox()
		if len(again) != 1 {
			t.Fatalf("%d outbox rows after saving again, want 1", len(again))
		}
		checkEventOf(t, again[0], o)
	})

	t.Run("failed order: no event until it is confirmed", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		failed := f.order(w.sale, w.user, 1, "retried", domain.OrderFailed, f.now)
		f.save(failed, true)
		f.save(failed, false)
		if rows := f.outbox(); len(rows) != 0 {
			t.Fatalf("failed order wrote %d outbox rows: %+v", len(rows), rows)
		}
		confirmed := f.order(w.sale, w.user, 1, "retried", domain.OrderConfirmed, f.now)
		confirmed.ID = failed.ID
		if _, err := f.st.SaveOrder(f.ctx, confirmed, confirmedEvent(confirmed)); err != nil {
			t.Fatalf("SaveOrder(confirmation): %v", err)
		}
		rows := f.outbox()
		if len(rows) != 1 {
			t.Fatalf("%d outbox rows after the confirmation, want 1", len(rows))
		}
		checkEventOf(t, rows[0], confirmed)
		// The confirmation redelivered, and a stale failure: still one event.
		f.save(confirmed, false, confirmedEvent(confirmed))
		f.save(failed, false)
		if n := len(f.outbox()); n != 1 {
			t.Fatalf("%d outbox rows, want 1", n)
		}
	})

	t.Run("refused order: no event", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		first := f.order(w.sale, w.user, 1, "shared-key", domain.OrderConfirmed, f.now)
		f.save(first, true, confirmedEvent(first))
		second := f.order(w.sale, w.user, 2, "shared-key", domain.OrderConfirmed, f.now.Add(time.Second))
		created, err := f.st.SaveOrder(f.ctx, second, confirmedEvent(second))
		if !errors.Is(err, domain.ErrPermanent) || created {
			t.Fatalf("SaveOrder(key taken) = %v, %v, want ErrPermanent", created, err)
		}
		unknownSale := f.order(w.sale, w.user, 1, "other-key", domain.OrderConfirmed, f.now)
		unknownSale.SaleID = uuid.New()
		if _, err := f.st.SaveOrder(f.ctx, unknownSale, confirmedEvent(unknownSale)); !errors.Is(err, domain.ErrPermanent) {
			t.Fatalf("SaveOrder(unknown sale) = %v, want ErrPermanent", err)
		}
		rows := f.outbox()
		if len(rows) != 1 {
			t.Fatalf("%d outbox rows, want only the first order's", len(rows))
		}
		checkEventOf(t, rows[0], first)
	})

	t.Run("event not written: order not written either", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		// This test's private database refuses outbox rows: the order must roll back with its event.
		if _, err := f.st.Pool().Exec(f.ctx, `
			CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'outbox refused by test'; END $$;
			CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox();`); err != nil {
			t.Fatal(err)
		}
		o := f.order(w.sale, w.user, 1, "atomic", domain.OrderConfirmed, f.now)
		created, err := f.st.SaveOrder(f.ctx, o, confirmedEvent(o))
		if err == nil || created {
			t.Fatalf("SaveOrder with the outbox refusing = %v, %v, want an error", created, err)
		}
		if errors.Is(err, domain.ErrPermanent) {
			t.Fatalf("an outbox failure is not the order's fault, yet: %v", err)
		}
		if _, err := f.st.Order(f.ctx, o.TenantID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
			t.Fatalf("order stored without its event: %v", err)
		}
		// A failed order needs no event: it is still written.
		failed := f.order(w.sale, w.user, 1, "failed", domain.OrderFailed, f.now)
		f.save(failed, true)
	})
}

// The repository has no rule of its own about events: it writes exactly the events it is given,
// with the order, and only when the row was inserted or replaced.
func TestSaveOrderWritesExactlyTheEventsItIsGiven(t *testing.T) {
	t.Parallel()

	t.Run("none given: none written, failed or confirmed", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		failed := f.order(w.sale, w.user, 1, "failed", domain.OrderFailed, f.now)
		f.save(failed, true)
		confirmed := f.order(w.sale, w.user, 1, "confirmed", domain.OrderConfirmed, f.now)
		f.save(confirmed, true)
		replaced := f.order(w.sale, w.user, 1, "replaced", domain.OrderFailed, f.now)
		f.save(replaced, true)
		replaced.Status, replaced.ConfirmedAt = domain.OrderConfirmed, confirmed.ConfirmedAt
		f.save(replaced, false)
		if rows := f.outbox(); len(rows) != 0 {
			t.Fatalf("saved with no events, yet %d outbox rows: %+v", len(rows), rows)
		}
		checkOrder(t, f.readOrder(confirmed), confirmed)
		checkOrder(t, f.readOrder(replaced), replaced)
	})

	t.Run("two given: both written as given, once", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		o := f.order(w.sale, w.user, 2, "two", domain.OrderConfirmed, f.now)
		audit := domain.Event{ID: uuid.New(), TenantID: o.TenantID, Topic: "order.audited", Key: "audit-" + o.ID.String(),
			Type: "order.audited", Payload: []byte(`{"orderId":"` + o.ID.String() + `","units":2}`), CreatedAt: f.now.Add(-time.Minute)}
		f.save(o, true, confirmedEvent(o), audit)
		checkTwo := func() {
			t.Helper()
			rows := f.outbox() // oldest first: the audit event, then the confirmation
			if len(rows) != 2 {
				t.Fatalf("%d outbox rows, want the 2 given: %+v", len(rows), rows)
			}
			checkRowIs(t, rows[0], audit)
			checkEventOf(t, rows[1], o)
			for _, r := range rows {
				checkUnpublished(t, r, 0, nil)
			}
		}
		checkTwo()
		// Redelivered with the same events: the row is unchanged, so no event is written again.
		f.save(o, false, confirmedEvent(o), audit)
		checkTwo()
	})

	t.Run("two given to a failed order replaced: both written", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		failed := f.order(w.sale, w.user, 1, "retried", domain.OrderFailed, f.now)
		f.save(failed, true)
		confirmed := f.order(w.sale, w.user, 1, "retried", domain.OrderConfirmed, f.now)
		confirmed.ID = failed.ID
		audit := domain.Event{ID: uuid.New(), TenantID: confirmed.TenantID, Topic: "order.audited", Key: confirmed.ID.String(),
			Type: "order.audited", Payload: []byte(`{}`), CreatedAt: f.now.Add(-time.Minute)}
		f.save(confirmed, false, confirmedEvent(confirmed), audit)
		rows := f.outbox()
		if len(rows) != 2 {
			t.Fatalf("%d outbox rows, want the 2 given: %+v", len(rows), rows)
		}
		checkRowIs(t, rows[0], audit)
		checkEventOf(t, rows[1], confirmed)
	})

	t.Run("an event refused: neither the order nor any event written", func(t *testing.T) {
		t.Parallel()
		w := newEventWorld(t)
		f := w.f
		o := f.order(w.sale, w.user, 1, "refused", domain.OrderConfirmed, f.now)
		stray := domain.Event{ID: uuid.New(), TenantID: uuid.New(), Topic: "order.audited", Key: o.ID.String(),
			Type: "order.audited", Payload: []byte(`{}`), CreatedAt: f.now} // of a tenant that does not exist
		created, err := f.st.SaveOrder(f.ctx, o, confirmedEvent(o), stray)
		if !errors.Is(err, domain.ErrPermanent) || created {
			t.Fatalf("SaveOrder(an event of an unknown tenant) = %v, %v, want an error wrapping ErrPermanent", created, err)
		}
		if _, err := f.st.Order(f.ctx, o.TenantID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
			t.Fatalf("order stored though its events were refused: %v", err)
		}
		if rows := f.outbox(); len(rows) != 0 {
			t.Fatalf("%d outbox rows, want none: %+v", len(rows), rows)
		}
	})
}

// checkRowIs checks that row is e as given (the payload compared as JSON: the column is jsonb).
func checkRowIs(t *testing.T, row outboxRow, e domain.Event) {
	t.Helper()
	if row.ID != e.ID || row.TenantID != e.TenantID || row.Topic != e.Topic || row.Key != e.Key || row.Type != e.Type ||
		!row.CreatedAt.Equal(e.CreatedAt) {
		t.Fatalf("outbox row %s %s/%s key %s tenant %s at %v, want %s %s/%s key %s tenant %s at %v", row.ID, row.Topic,
			row.Type, row.Key, row.TenantID, row.CreatedAt, e.ID, e.Topic, e.Type, e.Key, e.TenantID, e.CreatedAt)
	}
	var got, want any
	if err := json.Unmarshal(row.Payload, &got); err != nil {
		t.Fatalf("row payload %s: %v", row.Payload, err)
	}
	if err := json.Unmarshal(e.Payload, &want); err != nil {
		t.Fatalf("given payload %s: %v", e.Payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox payload %s, want %s", row.Payload, e.Payload)
	}
}

func TestRelayPendingPublishesOldestFirstInBatches(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	base := f.now.Add(-time.Hour)
	// Saved out of order: the relay goes by the event time, not by insertion.
	var orders []domain.Order
	for _, k := range []int{3, 1, 4, 0, 2} {
		orders = append(orders, w.confirmed(1+k%2, base.Add(time.Duration(k)*time.Minute)))
	}
	slices.SortFunc(orders, func(a, b domain.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })

	var batches [][]domain.Event
	publish := func(_ context.Context, events []domain.Event) error {
		batches = append(batches, slices.Clone(events))
		return nil
	}
	for i, want := range []int{2, 2, 1, 0} {
		n, err := f.st.RelayPending(f.ctx, 2, publish)
		if err != nil || n != want {
			t.Fatalf("relay pass %d = %d, %v, want %d, nil", i+1, n, err, want)
		}
	}
	if len(batches) != 3 {
		t.Fatalf("publish called %d times, want 3 (never with an empty batch)", len(batches))
	}
	var got []domain.Event
	for i, b := range batches {
		if want := []int{2, 2, 1}[i]; len(b) != want {
			t.Fatalf("batch %d has %d events, want %d", i+1, len(b), want)
		}
		got = append(got, b...)
	}
	for i, o := range orders {
		want := domain.OrderConfirmedEvent(o, *o.ConfirmedAt)
		e := got[i]
		if e.ID != want.ID || e.TenantID != want.TenantID || e.Topic != want.Topic || e.Key != want.Key ||
			e.Type != want.Type || !e.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("event %d = %+v, want %+v", i, e, want)
		}
		if p := decodePayload(t, e.Payload); p.OrderID != o.ID || p.EventID != want.ID || p.Quantity != o.Quantity {
			t.Fatalf("event %d payload %+v, want order %s", i, p, o.ID)
		}
	}
	for _, r := range f.outbox() {
		if r.PublishedAt == nil || r.Attempts != 1 || r.LastError != nil {
			t.Fatalf("row %s after publishing: published %v attempts %d last error %v", r.ID, r.PublishedAt, r.Attempts, r.LastError)
		}
	}
	if pending, oldest, err := f.st.Backlog(f.ctx); err != nil || pending != 0 || oldest != 0 {
		t.Fatalf("Backlog = %d, %v, %v, want 0, 0", pending, oldest, err)
	}
	// A new event is the only one the next pass sees.
	fresh := w.confirmed(1, f.now)
	batches = nil
	if n, err := f.st.RelayPending(f.ctx, 10, publish); err != nil || n != 1 {
		t.Fatalf("relay after a new order = %d, %v, want 1", n, err)
	}
	if len(batches) != 1 || len(batches[0]) != 1 || batches[0][0].Key != fresh.ID.String() {
		t.Fatalf("published %+v, want only the new order's event", batches)
	}
}

func TestRelayPendingPublishFailure(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	for i := range 3 {
		w.confirmed(1, f.now.Add(time.Duration(i)*time.Second))
	}
	errBroker := errors.New("broker unreachable")
	calls := 0
	failing := func(_ context.Context, events []domain.Event) error {
		calls++
		if len(events) != 3 {
			t.Errorf("publish got %d events, want 3", len(events))
		}
		return errBroker
	}
	for attempt := 1; attempt <= 2; attempt++ {
		n, err := f.st.RelayPending(f.ctx, 10, failing)
		if !errors.Is(err, errBroker) || n != 0 {
			t.Fatalf("relay attempt %d = %d, %v, want 0 and the publish error", attempt, n, err)
		}
		rows := f.outbox()
		if len(rows) != 3 {
			t.Fatalf("%d rows, want 3", len(rows))
		}
		msg := errBroker.Error()
		for _, r := range rows {
			checkUnpublished(t, r, attempt, &msg)
		}
		if pending, _, err := f.st.Backlog(f.ctx); err != nil || pending != 3 {
			t.Fatalf("Backlog after failure = %d, %v, want 3", pending, err)
		}
	}
	if calls != 2 {
		t.Fatalf("publish called %d times, want 2", calls)
	}
	// The broker is back: the same events go out, the error is cleared.
	n, err := f.st.RelayPending(f.ctx, 10, func(context.Context, []domain.Event) error { return nil })
	if err != nil || n != 3 {
		t.Fatalf("relay after recovery = %d, %v, want 3", n, err)
	}
	for _, r := range f.outbox() {
		if r.PublishedAt == nil || r.Attempts != 3 || r.LastError != nil {
			t.Fatalf("row %s: published %v attempts %d last error %v, want published after 3 attempts, no error",
				r.ID, r.PublishedAt, r.Attempts, r.LastError)
		}
	}
}

// Two relays at once (two nodes) never hand the same event to the broker: rows the first has
// claimed are skipped by the second, which takes the next ones.
func TestRelayPendingConcurrentRelaysSkipLocked(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	var all []uuid.UUID
	for i := range 6 {
		o := w.confirmed(1, f.now.Add(time.Duration(i)*time.Second))
		all = append(all, domain.OrderConfirmedEvent(o, *o.ConfirmedAt).ID)
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
			n, err := f.st.RelayPending(f.ctx, limit, func(_ context.Context, events []domain.Event) error {
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
	batchB, doneB := relay(10) // starts while A holds its rows
	gotB := await("relay B", batchB)

	if !slices.Equal(gotA, all[:4]) {
		t.Fatalf("relay A got %v, want the 4 oldest %v", gotA, all[:4])
	}
	if !slices.Equal(gotB, all[4:]) {
		t.Fatalf("relay B got %v, want the 2 rows A did not hold %v", gotB, all[4:])
	}
	// A third relay meanwhile finds every row held and publishes nothing.
	n, err := f.st.RelayPending(f.ctx, 10, func(_ context.Context, events []domain.Event) error {
		t.Errorf("third relay was handed %d held events", len(events))
		return nil
	})
	if err != nil || n != 0 {
		t.Fatalf("third relay = %d, %v, want 0, nil", n, err)
	}

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
	if n := f.count(`SELECT count(*) FROM outbox WHERE published_at IS NULL OR attempts <> 1`); n != 0 {
		t.Fatalf("%d rows not published exactly once", n)
	}
	if n, err := f.st.RelayPending(f.ctx, 10, func(context.Context, []domain.Event) error { return nil }); err != nil || n != 0 {
		t.Fatalf("relay after both = %d, %v, want 0", n, err)
	}
}

func TestOutboxBacklog(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	if pending, oldest, err := f.st.Backlog(f.ctx); err != nil || pending != 0 || oldest != 0 {
		t.Fatalf("empty Backlog = %d, %v, %v, want 0, 0", pending, oldest, err)
	}
	// Events are dated by their confirmation (a second after the order's creation).
	w.confirmed(1, f.now.Add(-time.Hour-time.Second))
	w.confirmed(1, f.now.Add(-10*time.Minute-time.Second))
	w.confirmed(1, f.now.Add(-time.Second))
	// The age is measured against PostgreSQL's clock, on this machine: bounds, not exact values.
	checkBacklog := func(wantPending int, atLeast time.Duration) {
		t.Helper()
		pending, oldest, err := f.st.Backlog(f.ctx)
		if err != nil || pending != wantPending || oldest < atLeast || oldest > atLeast+time.Minute {
			t.Fatalf("Backlog = %d, %v, %v, want %d, between %v and %v", pending, oldest, err, wantPending,
				atLeast, atLeast+time.Minute)
		}
	}
	checkBacklog(3, time.Hour)
	if n, err := f.st.RelayPending(f.ctx, 1, func(context.Context, []domain.Event) error { return nil }); err != nil || n != 1 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	checkBacklog(2, 10*time.Minute)
	// A failed publish keeps them in the backlog.
	if _, err := f.st.RelayPending(f.ctx, 5, func(context.Context, []domain.Event) error { return errors.New("down") }); err == nil {
		t.Fatal("relay with a failing publish returned nil")
	}
	checkBacklog(2, 10*time.Minute)
}

// ---------------------------------------------------------------------------------------------
// consumers

// eventOf is the decoded order.confirmed event of o.
func eventOf(t *testing.T, o domain.Order) domain.OrderConfirmedV1 {
	t.Helper()
	return decodePayload(t, domain.OrderConfirmedEvent(o, *o.ConfirmedAt).Payload)
}

// unsaved is a confirmed order of the world that is not stored: consumers see events only.
func (w *eventWorld) unsaved(qty int, created time.Time) domain.Order {
	return w.f.order(w.sale, w.user, qty, uuid.NewString(), domain.OrderConfirmed, created)
}

func checkStats(t *testing.T, got domain.SaleStats, saleID uuid.UUID, orders, units int, revenue int64, first, last time.Time) {
	t.Helper()
	if got.SaleID != saleID || got.Orders != orders || got.Units != units || got.RevenueCents != revenue ||
		got.Currency != "EUR" || got.FirstOrderAt == nil || got.LastOrderAt == nil ||
		!got.FirstOrderAt.Equal(first) || !got.LastOrderAt.Equal(last) {
		t.Fatalf("stats = %+v (first %v, last %v), want sale %s, %d orders, %d units, %d cents EUR, first %v, last %v",
			got, got.FirstOrderAt, got.LastOrderAt, saleID, orders, units, revenue, first, last)
	}
}

func TestAddOrderToStats(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	const consumer = "analytics"
	tenantID := w.sale.TenantID
	other := f.sale(tenantID, "other drop", -time.Hour, 2*time.Hour, 0)

	stats := func(saleID uuid.UUID) domain.SaleStats {
		t.Helper()
		s, err := f.st.SaleStats(f.ctx, tenantID, saleID)
		if err != nil {
			t.Fatalf("SaleStats: %v", err)
		}
		return s
	}
	if got := stats(w.sale.ID); got != (domain.SaleStats{SaleID: w.sale.ID}) {
		t.Fatalf("stats before any order = %+v, want zero values", got)
	}
	add := func(e domain.OrderConfirmedV1, wantApplied bool) {
		t.Helper()
		applied, err := f.st.AddOrderToStats(f.ctx, consumer, e)
		if err != nil || applied != wantApplied {
			t.Fatalf("AddOrderToStats(%s) = %v, %v, want %v, nil", e.EventID, applied, err, wantApplied)
		}
	}

	t0 := f.now.Add(-time.Hour)
	e1 := eventOf(t, w.unsaved(2, t0.Add(10*time.Minute)))
	add(e1, true)
	checkStats(t, stats(w.sale.ID), w.sale.ID, 1, 2, 3998, e1.OrderedAt, e1.OrderedAt)
	add(e1, false) // redelivered
	checkStats(t, stats(w.sale.ID), w.sale.ID, 1, 2, 3998, e1.OrderedAt, e1.OrderedAt)

	e2 := eventOf(t, w.unsaved(1, t0.Add(20*time.Minute)))
	add(e2, true)
	checkStats(t, stats(w.sale.ID), w.sale.ID, 2, 3, 5997, e1.OrderedAt, e2.OrderedAt)
	// An older order whose event arrives late moves the first order time back, not the last.
	e3 := eventOf(t, w.unsaved(1, t0.Add(5*time.Minute)))
	add(e3, true)
	checkStats(t, stats(w.sale.ID), w.sale.ID, 3, 4, 7996, e3.OrderedAt, e2.OrderedAt)
	add(e2, false)
	checkStats(t, stats(w.sale.ID), w.sale.ID, 3, 4, 7996, e3.OrderedAt, e2.OrderedAt)

	// Other sales, and other tenants asking, see nothing of it.
	if got := stats(other.ID); got != (domain.SaleStats{SaleID: other.ID}) {
		t.Fatalf("stats of a sale without orders = %+v, want zero values", got)
	}
	if got, err := f.st.SaleStats(f.ctx, uuid.New(), w.sale.ID); err != nil || got != (domain.SaleStats{SaleID: w.sale.ID}) {
		t.Fatalf("stats read by another tenant = %+v, %v, want zero values", got, err)
	}

	// An event of a sale that does not exist is poison: nothing recorded, not even as processed.
	processedBefore := f.count(`SELECT count(*) FROM processed_events`)
	bad := e1
	bad.EventID, bad.SaleID = uuid.New(), uuid.New()
	applied, err := f.st.AddOrderToStats(f.ctx, consumer, bad)
	if !errors.Is(err, domain.ErrPermanent) || applied {
		t.Fatalf("AddOrderToStats(unknown sale) = %v, %v, want an error wrapping ErrPermanent", applied, err)
	}
	if done, err := f.st.EventProcessed(f.ctx, consumer, bad.EventID); err != nil || done {
		t.Fatalf("refused event recorded as processed: %v, %v", done, err)
	}
	if n := f.count(`SELECT count(*) FROM processed_events`); n != processedBefore {
		t.Fatalf("processed_events has %d rows, want %d", n, processedBefore)
	}
	if n := f.count(`SELECT count(*) FROM sale_stats`); n != 1 {
		t.Fatalf("sale_stats has %d rows, want 1", n)
	}
	checkStats(t, stats(w.sale.ID), w.sale.ID, 3, 4, 7996, e3.OrderedAt, e2.OrderedAt)
}

func TestSaleCounters(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	const consumer = "inventory-sync"
	tenantID, saleID := w.sale.TenantID, w.sale.ID

	counter := func(id uuid.UUID) (int, bool) {
		t.Helper()
		sold, ok, err := f.st.SoldCounter(f.ctx, tenantID, id)
		if err != nil {
			t.Fatalf("SoldCounter: %v", err)
		}
		return sold, ok
	}
	drift := func() int {
		t.Helper()
		var d int
		if err := f.st.Pool().QueryRow(f.ctx, `SELECT drift FROM sale_counters WHERE sale_id = $1`, saleID).Scan(&d); err != nil {
			t.Fatalf("read drift: %v", err)
		}
		return d
	}
	add := func(e domain.OrderConfirmedV1, wantApplied bool) {
		t.Helper()
		applied, err := f.st.AddSoldUnits(f.ctx, consumer, e)
		if err != nil || applied != wantApplied {
			t.Fatalf("AddSoldUnits(%s) = %v, %v, want %v, nil", e.EventID, applied, err, wantApplied)
		}
	}

	if sold, ok := counter(saleID); sold != 0 || ok {
		t.Fatalf("counter before any event = %d, %v, want 0, false", sold, ok)
	}
	// Recording a drift before the first event creates nothing.
	if err := f.st.RecordDrift(f.ctx, tenantID, saleID, 4); err != nil {
		t.Fatalf("RecordDrift(no counter): %v", err)
	}
	if sold, ok := counter(saleID); sold != 0 || ok {
		t.Fatalf("counter after RecordDrift alone = %d, %v, want 0, false", sold, ok)
	}

	e1 := eventOf(t, w.unsaved(2, f.now))
	add(e1, true)
	if sold, ok := counter(saleID); sold != 2 || !ok {
		t.Fatalf("counter = %d, %v, want 2, true", sold, ok)
	}
	add(e1, false)
	e2 := eventOf(t, w.unsaved(3, f.now.Add(time.Second)))
	add(e2, true)
	add(e2, false)
	if sold, ok := counter(saleID); sold != 5 || !ok {
		t.Fatalf("counter = %d, %v, want 5, true", sold, ok)
	}
	if got := drift(); got != 0 {
		t.Fatalf("drift of a new counter = %d, want 0", got)
	}

	// The same event applies once per consumer: the analytics consumer still takes it.
	if applied, err := f.st.AddOrderToStats(f.ctx, "analytics", e1); err != nil || !applied {
		t.Fatalf("AddOrderToStats(other consumer, same event) = %v, %v, want applied", applied, err)
	}
	if sold, _ := counter(saleID); sold != 5 {
		t.Fatalf("counter moved to %d by another consumer, want 5", sold)
	}

	for _, d := range []int{3, -2, 0} {
		if err := f.st.RecordDrift(f.ctx, tenantID, saleID, d); err != nil {
			t.Fatalf("RecordDrift(%d): %v", d, err)
		}
		if got := drift(); got != d {
			t.Fatalf("drift = %d, want %d", got, d)
		}
	}
	// Another tenant cannot write this sale's drift.
	if err := f.st.RecordDrift(f.ctx, uuid.New(), saleID, 9); err != nil {
		t.Fatalf("RecordDrift(other tenant): %v", err)
	}
	if got := drift(); got != 0 {
		t.Fatalf("drift = %d after another tenant's write, want 0", got)
	}
	if sold, ok, err := f.st.SoldCounter(f.ctx, uuid.New(), saleID); err != nil || ok || sold != 0 {
		t.Fatalf("SoldCounter(other tenant) = %d, %v, %v, want 0, false", sold, ok, err)
	}
	if sold, _ := counter(saleID); sold != 5 {
		t.Fatalf("counter = %d after drift writes, want 5", sold)
	}

	// Unknown sale: poison, nothing recorded.
	bad := e2
	bad.EventID, bad.SaleID = uuid.New(), uuid.New()
	applied, err := f.st.AddSoldUnits(f.ctx, consumer, bad)
	if !errors.Is(err, domain.ErrPermanent) || applied {
		t.Fatalf("AddSoldUnits(unknown sale) = %v, %v, want an error wrapping ErrPermanent", applied, err)
	}
	if done, err := f.st.EventProcessed(f.ctx, consumer, bad.EventID); err != nil || done {
		t.Fatalf("refused event recorded as processed: %v, %v", done, err)
	}
	if sold, ok := counter(bad.SaleID); sold != 0 || ok {
		t.Fatalf("counter of the unknown sale = %d, %v", sold, ok)
	}
	if n := f.count(`SELECT count(*) FROM sale_counters`); n != 1 {
		t.Fatalf("sale_counters has %d rows, want 1", n)
	}
}

func TestProcessedEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id, other := uuid.New(), uuid.New()
	processed := func(consumer string, id uuid.UUID) bool {
		t.Helper()
		done, err := f.st.EventProcessed(f.ctx, consumer, id)
		if err != nil {
			t.Fatalf("EventProcessed(%s, %s): %v", consumer, id, err)
		}
		return done
	}
	if processed("email", id) {
		t.Fatal("event processed before it was marked")
	}
	for range 2 { // marking twice is harmless
		if err := f.st.MarkEventProcessed(f.ctx, "email", id); err != nil {
			t.Fatalf("MarkEventProcessed: %v", err)
		}
	}
	for _, c := range []struct {
		consumer string
		id       uuid.UUID
		want     bool
	}{{"email", id, true}, {"analytics", id, false}, {"email", other, false}} {
		if got := processed(c.consumer, c.id); got != c.want {
			t.Fatalf("EventProcessed(%s, %s) = %v, want %v", c.consumer, c.id, got, c.want)
		}
	}
	if n := f.count(`SELECT count(*) FROM processed_events WHERE consumer = 'email' AND event_id = $1`, id); n != 1 {
		t.Fatalf("%d processed rows for the event, want 1", n)
	}
}

// TestResendLost: the first incarnation recorded marks nothing; a new one marks unpublished
// every event published since the previous one was first recorded (less the margin), with the
// reason, and only once however many relays notice it at the same moment.
func TestResendLost(t *testing.T) {
	t.Parallel()
	w := newEventWorld(t)
	f := w.f
	var orders []domain.Order
	for i := range 6 {
		orders = append(orders, w.confirmed(1, f.now.Add(-time.Duration(10-i)*time.Minute)))
	}
	ok := func(context.Context, []domain.Event) error { return nil }
	if n, err := f.st.RelayPending(f.ctx, 10, ok); err != nil || n != 6 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	resend := func(incarnation string) int {
		t.Helper()
		n, err := f.st.ResendLost(f.ctx, incarnation, time.Minute)
		if err != nil {
			t.Fatalf("ResendLost(%s): %v", incarnation, err)
		}
		return n
	}
	if n := resend("A"); n != 0 {
		t.Fatalf("first incarnation marked %d events", n)
	}
	if n := resend("A"); n != 0 {
		t.Fatalf("the same incarnation again marked %d events", n)
	}
	// A was first seen an hour ago; two events were published before it (and before the margin).
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := f.st.Pool().Exec(f.ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE outbox_broker SET seen_at = now() - interval '1 hour'`)
	exec(`UPDATE outbox SET published_at = now() - interval '2 hours' WHERE key = ANY($1)`,
		[]string{orders[0].ID.String(), orders[1].ID.String()})
	exec(`UPDATE outbox SET published_at = now() - interval '1 hour 30 seconds' WHERE key = $1`, orders[2].ID.String())

	if n := resend("B"); n != 4 {
		t.Fatalf("B marked %d events, want the 4 published since A was seen (one of them within the margin)", n)
	}
	for i, r := range f.outbox() {
		lost := i >= 2
		if lost != (r.PublishedAt == nil) {
			t.Fatalf("event %d: published %v, want lost=%v", i, r.PublishedAt, lost)
		}
		if lost && (r.LastError == nil || !strings.Contains(*r.LastError, "lost") || !strings.Contains(*r.LastError, "B")) {
			t.Fatalf("event %d: last error %v, want the reason", i, r.LastError)
		}
	}
	if pending, _, err := f.st.Backlog(f.ctx); err != nil || pending != 4 {
		t.Fatalf("backlog %d, %v; want 4", pending, err)
	}
	if n, err := f.st.RelayPending(f.ctx, 10, ok); err != nil || n != 4 {
		t.Fatalf("relay after the loss = %d, %v", n, err)
	}
	if n := resend("B"); n != 0 {
		t.Fatalf("B again marked %d events", n)
	}

	// Two relays notice C at once: the 4 events published since B are marked once.
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Go(func() {
			n, err := f.st.ResendLost(f.ctx, "C", time.Minute)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != 4 || counts[0]*counts[1] != 0 {
		t.Fatalf("two relays noticing C marked %v, want 4 by one of them", counts)
	}
}
