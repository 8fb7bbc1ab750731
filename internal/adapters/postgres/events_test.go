package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports/storetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// What the ports cannot see, and so the contract (storetest, run in store_contract_test.go)
// cannot check: the outbox's publishing record, the rows a refused event leaves (none), the
// drift column, and a SaveOrder whose outbox insert fails for a reason of the database's own.

// pgWorld is the contract's world on a fresh database, with the Store for raw reads.
type pgWorld struct {
	*storetest.World
	st *postgres.Store
}

func newPGWorld(t *testing.T) *pgWorld {
	t.Helper()
	pool, _ := testutil.NewPool(t, 10)
	st := postgres.NewStore(pool)
	return &pgWorld{World: storetest.NewWorld(t, st), st: st}
}

// outboxRow is one outbox row's publishing record.
type outboxRow struct {
	ID          uuid.UUID
	PublishedAt *time.Time
	Attempts    int
	LastError   *string
}

// outbox reads every outbox row, oldest first.
func (w *pgWorld) outbox() []outboxRow {
	w.T.Helper()
	rows, err := w.st.Pool().Query(w.Ctx, `SELECT id, published_at, attempts, last_error FROM outbox ORDER BY created_at, id`)
	if err != nil {
		w.T.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.PublishedAt, &r.Attempts, &r.LastError); err != nil {
			w.T.Fatalf("scan outbox: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		w.T.Fatalf("read outbox: %v", err)
	}
	return out
}

// count runs a SELECT count(*) query.
func (w *pgWorld) count(query string, args ...any) int {
	w.T.Helper()
	var n int
	if err := w.st.Pool().QueryRow(w.Ctx, query, args...).Scan(&n); err != nil {
		w.T.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkRows fails unless every outbox row is published (or not), after attempts, with lastError.
func (w *pgWorld) checkRows(wantRows int, published bool, attempts int, lastError *string) {
	w.T.Helper()
	rows := w.outbox()
	if len(rows) != wantRows {
		w.T.Fatalf("%d outbox rows, want %d", len(rows), wantRows)
	}
	for _, r := range rows {
		if (r.PublishedAt != nil) != published || r.Attempts != attempts || (r.LastError == nil) != (lastError == nil) ||
			(lastError != nil && *r.LastError != *lastError) {
			w.T.Fatalf("row %s: published %v attempts %d last error %v, want published %v, %d attempts, last error %v",
				r.ID, r.PublishedAt, r.Attempts, r.LastError, published, attempts, lastError)
		}
	}
}

// The outbox rows record each relay: unpublished with no attempt when written, every failed
// attempt counted with its error, and published (the error cleared) once the broker took them.
func TestOutboxRowsRecordPublishing(t *testing.T) {
	t.Parallel()
	w := newPGWorld(t)
	for i := range 3 {
		w.Confirmed(1, w.Now.Add(time.Duration(i)*time.Second))
	}
	w.checkRows(3, false, 0, nil)
	msg := "broker unreachable"
	for attempt := 1; attempt <= 2; attempt++ {
		if _, err := w.st.RelayPending(w.Ctx, 10, func(context.Context, []domain.Event) error { return errors.New(msg) }); err == nil {
			t.Fatal("relay with a failing publish returned nil")
		}
		w.checkRows(3, false, attempt, &msg)
	}
	if n, err := w.st.RelayPending(w.Ctx, 10, func(context.Context, []domain.Event) error { return nil }); err != nil || n != 3 {
		t.Fatalf("relay after recovery = %d, %v, want 3", n, err)
	}
	w.checkRows(3, true, 3, nil)
}

// An outbox insert the database fails (here a trigger, standing for any failure of its own) rolls
// the order back with it, and is not the order's fault: not permanent, so the write is retried.
func TestSaveOrderRollsBackWithItsEvent(t *testing.T) {
	t.Parallel()
	w := newPGWorld(t)
	if _, err := w.st.Pool().Exec(w.Ctx, `
		CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'outbox refused by test'; END $$;
		CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox();`); err != nil {
		t.Fatal(err)
	}
	o := w.Unsaved(1, w.Now)
	created, err := w.st.SaveOrder(w.Ctx, o, storetest.ConfirmedEvent(o))
	if err == nil || created {
		t.Fatalf("SaveOrder with the outbox refusing = %v, %v, want an error", created, err)
	}
	if errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("an outbox failure is not the order's fault, yet: %v", err)
	}
	if _, err := w.st.Order(w.Ctx, o.TenantID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("order stored without its event: %v", err)
	}
	// A failed order needs no event: it is still written.
	w.Save(w.Order(w.Sale, w.Buyer, 1, "failed", domain.OrderFailed, w.Now), true)
}

// The drift is kept beside the counter: 0 for a new counter, the last value recorded, and never
// written by another tenant.
func TestSaleCounterDriftColumn(t *testing.T) {
	t.Parallel()
	w := newPGWorld(t)
	tenantID, saleID := w.Sale.TenantID, w.Sale.ID
	drift := func() int {
		t.Helper()
		var d int
		if err := w.st.Pool().QueryRow(w.Ctx, `SELECT drift FROM sale_counters WHERE sale_id = $1`, saleID).Scan(&d); err != nil {
			t.Fatalf("read drift: %v", err)
		}
		return d
	}
	if _, err := w.st.AddSoldUnits(w.Ctx, "inventory-sync", storetest.EventOf(t, w.Unsaved(2, w.Now))); err != nil {
		t.Fatal(err)
	}
	if got := drift(); got != 0 {
		t.Fatalf("drift of a new counter = %d, want 0", got)
	}
	for _, d := range []int{3, -2, 0} {
		if err := w.st.RecordDrift(w.Ctx, tenantID, saleID, d); err != nil {
			t.Fatalf("RecordDrift(%d): %v", d, err)
		}
		if got := drift(); got != d {
			t.Fatalf("drift = %d, want %d", got, d)
		}
	}
	if err := w.st.RecordDrift(w.Ctx, uuid.New(), saleID, 9); err != nil {
		t.Fatalf("RecordDrift(other tenant): %v", err)
	}
	if got := drift(); got != 0 {
		t.Fatalf("drift = %d after another tenant's write, want 0", got)
	}
}

// An event of an unknown sale leaves no row behind in any table of the consumers.
func TestRefusedEventsLeaveNoRows(t *testing.T) {
	t.Parallel()
	w := newPGWorld(t)
	bad := storetest.EventOf(t, w.Unsaved(1, w.Now))
	bad.SaleID = uuid.New()
	if _, err := w.st.AddOrderToStats(w.Ctx, "analytics", bad); !errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("AddOrderToStats(unknown sale) = %v, want ErrPermanent", err)
	}
	if _, err := w.st.AddSoldUnits(w.Ctx, "inventory-sync", bad); !errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("AddSoldUnits(unknown sale) = %v, want ErrPermanent", err)
	}
	for _, table := range []string{"processed_events", "sale_stats", "sale_counters"} {
		if n := w.count(`SELECT count(*) FROM ` + table); n != 0 {
			t.Errorf("%s has %d rows, want none", table, n)
		}
	}
}

// TestResendLost: the first incarnation recorded marks nothing; a new one marks unpublished
// every event published since the previous one was first recorded (less the margin), with the
// reason, and only once however many relays notice it at the same moment.
func TestResendLost(t *testing.T) {
	t.Parallel()
	w := newPGWorld(t)
	var orders []domain.Order
	for i := range 6 {
		orders = append(orders, w.Confirmed(1, w.Now.Add(-time.Duration(10-i)*time.Minute)))
	}
	ok := func(context.Context, []domain.Event) error { return nil }
	if n, err := w.st.RelayPending(w.Ctx, 10, ok); err != nil || n != 6 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	resend := func(incarnation string) int {
		t.Helper()
		n, err := w.st.ResendLost(w.Ctx, incarnation, time.Minute)
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
		if _, err := w.st.Pool().Exec(w.Ctx, sql, args...); err != nil {
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
	for i, r := range w.outbox() {
		lost := i >= 2
		if lost != (r.PublishedAt == nil) {
			t.Fatalf("event %d: published %v, want lost=%v", i, r.PublishedAt, lost)
		}
		if lost && (r.LastError == nil || !strings.Contains(*r.LastError, "lost") || !strings.Contains(*r.LastError, "B")) {
			t.Fatalf("event %d: last error %v, want the reason", i, r.LastError)
		}
	}
	if pending, _, err := w.st.Backlog(w.Ctx); err != nil || pending != 4 {
		t.Fatalf("backlog %d, %v; want 4", pending, err)
	}
	if n, err := w.st.RelayPending(w.Ctx, 10, ok); err != nil || n != 4 {
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
			n, err := w.st.ResendLost(w.Ctx, "C", time.Minute)
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
