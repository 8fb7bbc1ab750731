package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// ---------------------------------------------------------------------------------------------
// relay

// outboxEvents puts n events in the outbox, the i-th created n-i minutes ago (oldest first),
// and returns their ids in that order.
func (e *env) outboxEvents(n int) []uuid.UUID {
	now := e.clock.Now()
	ids := make([]uuid.UUID, n)
	events := make([]domain.Event, n)
	for i := range n {
		ids[i] = uuid.New()
		events[i] = domain.Event{ID: ids[i], TenantID: e.tenant.ID, Topic: domain.TopicOrderConfirmed, Key: ids[i].String(),
			Type: domain.EventOrderConfirmed, Payload: []byte(`{}`), CreatedAt: now.Add(-time.Duration(n-i) * time.Minute)}
	}
	// Stored newest first: the relay must not go by insertion order.
	for i := n - 1; i >= 0; i-- {
		e.outbox.add(events[i])
	}
	return ids
}

func TestRelayOutboxLoopsWhileBatchesAreFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		events      int
		wantRelays  int // RelayPending calls
		wantBatches []int
	}{
		{events: 5, wantRelays: 3, wantBatches: []int{2, 2, 1}}, // a short batch ends the pass
		{events: 4, wantRelays: 3, wantBatches: []int{2, 2}},    // a full batch asks again; 0 ends it
		{events: 1, wantRelays: 1, wantBatches: []int{1}},
		{events: 0, wantRelays: 1, wantBatches: []int{}},
	} {
		t.Run(fmt.Sprintf("%d events", tc.events), func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, func(s *app.Settings) { s.RelayBatch = 2 })
			ids := e.outboxEvents(tc.events)

			n, err := e.app.RelayOutbox.Handle(ctx)
			if err != nil || n != tc.events {
				t.Fatalf("relay = %d, %v, want %d, nil", n, err, tc.events)
			}
			if got := e.outbox.count("RelayPending"); got != tc.wantRelays {
				t.Errorf("RelayPending called %d times, want %d", got, tc.wantRelays)
			}
			if got := e.publisher.batchSizes(); !slices.Equal(got, tc.wantBatches) {
				t.Errorf("batches %v, want %v", got, tc.wantBatches)
			}
			if got := e.publisher.deliveredIDs(); !slices.Equal(got, ids) {
				t.Errorf("delivered %v, want oldest first %v", got, ids)
			}
			if got := e.metrics.backlogReports(); !slices.Equal(got, []backlogReport{{0, 0}}) {
				t.Errorf("backlog reports %v, want one report of an empty outbox", got)
			}
		})
	}
}

func TestRelayOutboxPublishFailure(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *app.Settings) { s.RelayBatch = 2 })
	ids := e.outboxEvents(5)
	e.publisher.OnPublish = func(call int, _ []domain.Event) error {
		if call == 2 {
			return errBoom
		}
		return nil
	}

	n, err := e.app.RelayOutbox.Handle(ctx)
	if !errors.Is(err, errBoom) || n != 2 {
		t.Fatalf("relay = %d, %v, want 2 and the publish error", n, err)
	}
	// The error says what waits: the three events after the first batch, the oldest 3 minutes old.
	if !strings.Contains(err.Error(), "3 events waiting, oldest 3m0s") {
		t.Errorf("error %q does not report the backlog", err)
	}
	if got := e.outbox.count("RelayPending"); got != 2 {
		t.Errorf("RelayPending called %d times, want 2: no pass after a failure", got)
	}
	if got := e.metrics.backlogReports(); !slices.Equal(got, []backlogReport{{3, 3 * time.Minute}}) {
		t.Errorf("backlog reports %v, want [{3 3m}]", got)
	}
	for i, id := range ids {
		en, _ := e.outbox.entry(id)
		switch {
		case i < 2 && (!en.published || en.attempts != 1):
			t.Errorf("event %d: %+v, want published on the first attempt", i, en)
		case i >= 2 && i < 4 && (en.published || en.attempts != 1 || !strings.Contains(en.lastErr, errBoom.Error())):
			t.Errorf("event %d: %+v, want left unpublished with the error", i, en)
		case i == 4 && (en.published || en.attempts != 0):
			t.Errorf("event %d: %+v, want never tried", i, en)
		}
	}

	// The next pass delivers the rest.
	e.publisher.OnPublish = nil
	if n, err := e.app.RelayOutbox.Handle(ctx); err != nil || n != 3 {
		t.Fatalf("second relay = %d, %v, want 3, nil", n, err)
	}
	if got := e.metrics.backlogReports(); len(got) != 2 || got[1] != (backlogReport{}) {
		t.Errorf("backlog reports %v, want a second, empty one", got)
	}
}

// A backlog that cannot be read costs the metric only: the relay's own result stands.
func TestRelayOutboxBacklogUnreadable(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *app.Settings) { s.RelayBatch = 2 })
	e.outboxEvents(3)
	e.outbox.BacklogErr = errBoom
	if n, err := e.app.RelayOutbox.Handle(ctx); err != nil || n != 3 {
		t.Fatalf("relay = %d, %v, want 3, nil", n, err)
	}
	if got := e.metrics.backlogReports(); len(got) != 0 {
		t.Fatalf("backlog reported %v without a reading", got)
	}
}

// ---------------------------------------------------------------------------------------------
// consumers

// buyer is a user of the env's tenant.
func (e *env) buyer(t *testing.T, email string) domain.User {
	t.Helper()
	u := domain.User{ID: uuid.New(), TenantID: e.tenant.ID, Email: email, PasswordHash: "x", Role: domain.RoleShopper,
		CreatedAt: e.clock.Now()}
	if err := e.users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// confirmedEvent is the decoded order.confirmed event of an order of qty units of s by u.
func confirmedEvent(t *testing.T, s domain.Sale, userID uuid.UUID, qty int, orderedAt time.Time) domain.OrderConfirmedV1 {
	t.Helper()
	o := domain.Order{
		ID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: userID, Quantity: qty, IdempotencyKey: "k",
		Status: domain.OrderConfirmed, UnitPriceCents: s.PriceCents, AmountCents: s.PriceCents * int64(qty),
		Currency: s.Currency, CreatedAt: orderedAt,
	}
	ev, err := domain.DecodeOrderConfirmed(domain.OrderConfirmedEvent(o, orderedAt.Add(time.Second)).Payload)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSendOrderEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.buyer(t, "buyer@example.com")
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	s.Name = "Café Drop"
	e.sales.put(s)
	ev := confirmedEvent(t, s, u.ID, 3, time.Date(2030, 1, 2, 11, 30, 0, 0, time.UTC))

	if err := e.app.SendOrderEmail.Handle(ctx, ev); err != nil {
		t.Fatalf("send: %v", err)
	}
	mails := e.mailer.mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails sent, want 1", len(mails))
	}
	m := mails[0]
	if m.To != "buyer@example.com" || m.ID != ev.EventID.String() || m.Subject != "Your order for Café Drop is confirmed" {
		t.Fatalf("mail to %q id %q subject %q, want buyer@example.com, %s, the sale's name", m.To, m.ID, m.Subject, ev.EventID)
	}
	for _, want := range []string{
		"Sale:     Café Drop",
		"Quantity: 3 units at 19.99 EUR",
		"Total:    59.97 EUR",
		"Order:    " + ev.OrderID.String(),
		"Placed:   Wed, 02 Jan 2030 11:30:00 UTC",
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("mail text lacks %q:\n%s", want, m.Text)
		}
	}
	if !e.processed.isDone(app.ConsumerEmail, ev.EventID) {
		t.Fatal("event not marked processed after the mail went out")
	}
	// Redelivered: not sent twice.
	if err := e.app.SendOrderEmail.Handle(ctx, ev); err != nil {
		t.Fatalf("redelivered: %v", err)
	}
	if n := e.mailer.count("Send"); n != 1 {
		t.Fatalf("Send called %d times after a redelivery, want 1", n)
	}

	// One unit is singular.
	one := confirmedEvent(t, s, u.ID, 1, e.clock.Now())
	if err := e.app.SendOrderEmail.Handle(ctx, one); err != nil {
		t.Fatal(err)
	}
	if got := e.mailer.mails(); len(got) != 2 || !strings.Contains(got[1].Text, "Quantity: 1 unit at 19.99 EUR\n") ||
		!strings.Contains(got[1].Text, "Total:    19.99 EUR") {
		t.Fatalf("single-unit mail: %+v", got)
	}
}

func TestSendOrderEmailSkipsProcessedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.buyer(t, "buyer@example.com")
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	ev := confirmedEvent(t, s, u.ID, 1, e.clock.Now())
	// Another consumer having processed it does not count.
	e.processed.mark(app.ConsumerAnalytics, ev.EventID)
	e.processed.mark(app.ConsumerEmail, ev.EventID)

	if err := e.app.SendOrderEmail.Handle(ctx, ev); err != nil {
		t.Fatalf("send: %v", err)
	}
	if n := e.mailer.count("Send"); n != 0 {
		t.Fatalf("Send called %d times for a processed event", n)
	}
	if n := e.users.calls.count("UserByID") + e.sales.count("Sale") + e.processed.count("MarkEventProcessed"); n != 0 {
		t.Fatalf("%d further calls for a processed event, want none", n)
	}

	// Processed by the analytics consumer only: the mail goes out.
	other := confirmedEvent(t, s, u.ID, 1, e.clock.Now())
	e.processed.mark(app.ConsumerAnalytics, other.EventID)
	if err := e.app.SendOrderEmail.Handle(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := e.mailer.count("Send"); n != 1 {
		t.Fatalf("Send called %d times, want 1", n)
	}
}

func TestSendOrderEmailFailures(t *testing.T) {
	t.Parallel()

	t.Run("mailer down: retryable, nothing marked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		u := e.buyer(t, "buyer@example.com")
		s := e.newSale(10, 5, -time.Hour, time.Hour)
		ev := confirmedEvent(t, s, u.ID, 2, e.clock.Now())
		e.mailer.Err = errBoom
		err := e.app.SendOrderEmail.Handle(ctx, ev)
		if !errors.Is(err, errBoom) || errors.Is(err, domain.ErrPermanent) {
			t.Fatalf("send with the mailer down = %v, want the mailer's error, not permanent", err)
		}
		if e.processed.isDone(app.ConsumerEmail, ev.EventID) || e.processed.count("MarkEventProcessed") != 0 {
			t.Fatal("event marked processed although the mail was not sent")
		}
		// Retried once the mailer is back: sent and marked.
		e.mailer.Err = nil
		if err := e.app.SendOrderEmail.Handle(ctx, ev); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if len(e.mailer.mails()) != 1 || !e.processed.isDone(app.ConsumerEmail, ev.EventID) {
			t.Fatalf("retry: %d mails, processed %v", len(e.mailer.mails()), e.processed.isDone(app.ConsumerEmail, ev.EventID))
		}
	})

	for name, tc := range map[string]struct {
		event    func(t *testing.T, e *env, u domain.User, s domain.Sale) domain.OrderConfirmedV1
		sentinel error
	}{
		"unknown buyer": {
			event: func(t *testing.T, e *env, _ domain.User, s domain.Sale) domain.OrderConfirmedV1 {
				return confirmedEvent(t, s, uuid.New(), 1, e.clock.Now())
			},
			sentinel: domain.ErrUserNotFound,
		},
		"buyer of another tenant": {
			event: func(t *testing.T, e *env, _ domain.User, s domain.Sale) domain.OrderConfirmedV1 {
				other := e.tenants.ensure("other", "Other merchant")
				stranger := domain.User{ID: uuid.New(), TenantID: other.ID, Email: "x@example.com", Role: domain.RoleShopper}
				if err := e.users.CreateUser(ctx, stranger); err != nil {
					t.Fatal(err)
				}
				return confirmedEvent(t, s, stranger.ID, 1, e.clock.Now())
			},
			sentinel: domain.ErrUserNotFound,
		},
		"unknown sale": {
			event: func(t *testing.T, e *env, u domain.User, s domain.Sale) domain.OrderConfirmedV1 {
				s.ID = uuid.New()
				return confirmedEvent(t, s, u.ID, 1, e.clock.Now())
			},
			sentinel: domain.ErrSaleNotFound,
		},
	} {
		t.Run(name+": permanent", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u := e.buyer(t, "buyer@example.com")
			s := e.newSale(10, 5, -time.Hour, time.Hour)
			ev := tc.event(t, e, u, s)
			err := e.app.SendOrderEmail.Handle(ctx, ev)
			if !errors.Is(err, domain.ErrPermanent) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("send = %v, want an error wrapping ErrPermanent and %v", err, tc.sentinel)
			}
			if n := e.mailer.count("Send"); n != 0 {
				t.Fatalf("Send called %d times", n)
			}
			if e.processed.isDone(app.ConsumerEmail, ev.EventID) {
				t.Fatal("refused event marked processed")
			}
		})
	}

	t.Run("processed lookup fails: retryable, nothing sent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		u := e.buyer(t, "buyer@example.com")
		ev := confirmedEvent(t, e.newSale(10, 5, -time.Hour, time.Hour), u.ID, 1, e.clock.Now())
		e.processed.ProcessedErr = errBoom
		if err := e.app.SendOrderEmail.Handle(ctx, ev); !errors.Is(err, errBoom) || errors.Is(err, domain.ErrPermanent) {
			t.Fatalf("send = %v, want the lookup's error", err)
		}
		if n := e.mailer.count("Send"); n != 0 {
			t.Fatalf("Send called %d times", n)
		}
	})

	t.Run("mark fails after sending: retried, the mail not sent again", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		u := e.buyer(t, "buyer@example.com")
		ev := confirmedEvent(t, e.newSale(10, 5, -time.Hour, time.Hour), u.ID, 1, e.clock.Now())
		e.processed.failMarks.Store(3) // the database is down for three tries
		if err := e.app.SendOrderEmail.Handle(ctx, ev); err != nil {
			t.Fatalf("send = %v, want the mark retried until written", err)
		}
		if n := len(e.mailer.mails()); n != 1 {
			t.Fatalf("%d mails sent, want 1", n)
		}
		if err := e.app.SendOrderEmail.Handle(ctx, ev); err != nil || len(e.mailer.mails()) != 1 {
			t.Fatalf("redelivery = %v, %d mails; want nothing sent again", err, len(e.mailer.mails()))
		}
	})

	t.Run("mark fails until the consumer stops: error returned", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		u := e.buyer(t, "buyer@example.com")
		ev := confirmedEvent(t, e.newSale(10, 5, -time.Hour, time.Hour), u.ID, 1, e.clock.Now())
		e.processed.MarkErr = errBoom
		stopping, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := e.app.SendOrderEmail.Handle(stopping, ev); !errors.Is(err, errBoom) {
			t.Fatalf("send = %v, want the mark's error (the event is redelivered)", err)
		}
		if n := len(e.mailer.mails()); n != 1 {
			t.Fatalf("%d mails sent, want 1", n)
		}
	})
}

func TestRecordSaleStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	first := confirmedEvent(t, s, uuid.New(), 2, e.clock.Now().Add(-time.Minute))
	second := confirmedEvent(t, s, uuid.New(), 1, e.clock.Now())
	for _, ev := range []domain.OrderConfirmedV1{first, second, first} {
		if err := e.app.RecordSaleStats.Handle(ctx, ev); err != nil {
			t.Fatalf("record: %v", err)
		}
	}
	want := []consumerEvent{{app.ConsumerAnalytics, first.EventID}, {app.ConsumerAnalytics, second.EventID},
		{app.ConsumerAnalytics, first.EventID}}
	if got := e.stats.addCalls(); !slices.Equal(got, want) {
		t.Fatalf("AddOrderToStats calls %v, want %v", got, want)
	}
	st, _ := e.stats.SaleStats(ctx, s.TenantID, s.ID)
	if st.Orders != 2 || st.Units != 3 || st.RevenueCents != 5997 {
		t.Fatalf("stats %+v, want 2 orders, 3 units, 5997 cents (the redelivery ignored)", st)
	}
	e.stats.AddErr = errBoom
	if err := e.app.RecordSaleStats.Handle(ctx, confirmedEvent(t, s, uuid.New(), 1, e.clock.Now())); !errors.Is(err, errBoom) {
		t.Fatalf("record with the store failing = %v, want its error", err)
	}
}

func TestGetSaleStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	quiet := e.newSale(10, 5, -time.Hour, time.Hour)
	t1, t2 := e.clock.Now().Add(-time.Hour), e.clock.Now()
	for _, ev := range []domain.OrderConfirmedV1{confirmedEvent(t, s, uuid.New(), 2, t2), confirmedEvent(t, s, uuid.New(), 1, t1)} {
		if _, err := e.stats.AddOrderToStats(ctx, app.ConsumerAnalytics, ev); err != nil {
			t.Fatal(err)
		}
	}

	got, err := e.app.GetSaleStats.Handle(ctx, e.admin(), s.ID)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	if got.SaleID != s.ID || got.Orders != 2 || got.Units != 3 || got.RevenueCents != 5997 || got.Currency != "EUR" ||
		got.FirstOrderAt == nil || !got.FirstOrderAt.Equal(t1) || got.LastOrderAt == nil || !got.LastOrderAt.Equal(t2) {
		t.Fatalf("stats %+v, want 2 orders, 3 units, 5997 EUR cents, from %v to %v", got, t1, t2)
	}
	if got, err := e.app.GetSaleStats.Handle(ctx, e.admin(), quiet.ID); err != nil || got != (domain.SaleStats{SaleID: quiet.ID}) {
		t.Fatalf("stats of a sale without orders = %+v, %v, want zero values", got, err)
	}

	reads := e.stats.count("SaleStats")
	if _, err := e.app.GetSaleStats.Handle(ctx, e.shopper(), s.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("shopper: %v, want ErrForbidden", err)
	}
	if _, err := e.app.GetSaleStats.Handle(ctx, e.adminOf(uuid.New()), s.ID); !errors.Is(err, domain.ErrSaleNotFound) {
		t.Fatalf("admin of another tenant: %v, want ErrSaleNotFound", err)
	}
	if _, err := e.app.GetSaleStats.Handle(ctx, e.admin(), uuid.New()); !errors.Is(err, domain.ErrSaleNotFound) {
		t.Fatalf("unknown sale: %v, want ErrSaleNotFound", err)
	}
	if n := e.stats.count("SaleStats"); n != reads {
		t.Fatalf("figures read %d times for refused requests", n-reads)
	}
}

// ---------------------------------------------------------------------------------------------
// inventory sync

func TestSyncInventoryCountsEachEventOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	a, b := confirmedEvent(t, s, uuid.New(), 2, e.clock.Now()), confirmedEvent(t, s, uuid.New(), 3, e.clock.Now())
	for _, ev := range []domain.OrderConfirmedV1{a, b, a, b} {
		if err := e.app.SyncInventory.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := e.counters.soldOf(s.TenantID, s.ID); !ok || n != 5 {
		t.Fatalf("counter = %d, %v, want 5", n, ok)
	}
	// The counter is the inventory-sync consumer's: another consumer's name sees a new event.
	if applied, _ := e.counters.AddSoldUnits(ctx, app.ConsumerAnalytics, a); !applied {
		t.Fatal("events applied under another consumer's name")
	}
}

func TestSyncInventoryCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tid := e.tenant.ID
	shopper := e.shopper()
	open := func(sold int) domain.Sale {
		s := e.newSale(100, 10, -time.Hour, time.Hour)
		e.loadInventory(t, s, sold)
		return s
	}
	// A: 4 units durable, 1 pending; PostgreSQL counted the 4: in step.
	sA := open(4)
	pendingA := e.reserve(t, sA, shopper, 1)
	e.counters.setSold(tid, sA.ID, 4)
	// B: 3 units durable, PostgreSQL counted 2: one unit of drift.
	sB := open(3)
	e.counters.setSold(tid, sB.ID, 2)
	// C: sold in Redis, not counted yet: skipped.
	sC := open(2)
	// D: counted, unknown to Redis: skipped.
	sD := e.newSale(100, 10, -time.Hour, time.Hour)
	e.counters.setSold(tid, sD.ID, 5)
	// E: ended beyond the horizon, and so closed by the reconciler's pass: not looked at.
	sE := e.newSale(100, 10, -e.settings.SaleHorizon-2*time.Hour, -e.settings.SaleHorizon-time.Hour)
	e.loadInventory(t, sE, 9)
	e.counters.setSold(tid, sE.ID, 1)
	e.sales.closeEnded(e.clock.Now().Add(-e.settings.SaleHorizon))

	check := func(want ...app.Drift) {
		t.Helper()
		got, err := e.app.SyncInventory.Check(ctx)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		cmp := func(a, b app.Drift) int { return strings.Compare(a.SaleID.String(), b.SaleID.String()) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(want, cmp)
		if !slices.Equal(got, want) {
			t.Fatalf("drifts %+v, want %+v", got, want)
		}
		gauges := e.metrics.driftGauges()
		if len(gauges) != len(want) {
			t.Fatalf("drift gauges %v, want %d", gauges, len(want))
		}
		calls := e.counters.driftCalls()
		last := map[saleKey]int{}
		for _, c := range calls {
			last[c.Sale] = c.Drift
		}
		for _, d := range want {
			k := saleKey{d.TenantID, d.SaleID}
			if v, ok := gauges[k]; !ok || v != d.Drift {
				t.Fatalf("drift gauge of %s = %d, %v, want %d", d.SaleID, v, ok, d.Drift)
			}
			if v, ok := last[k]; !ok || v != d.Drift {
				t.Fatalf("recorded drift of %s = %d, %v, want %d", d.SaleID, v, ok, d.Drift)
			}
		}
		if len(last) != len(want) {
			t.Fatalf("drift recorded for %d sales, want %d", len(last), len(want))
		}
	}
	logs := func(level slog.Level, msg string, s domain.Sale) int {
		return e.log.loggedFor(level, msg, "sale_id", s.ID.String())
	}
	const warn, back = "inventory drift", "back in step"
	checkLogs := func(wantWarnA, wantWarnB, wantBackA, wantBackB int) {
		t.Helper()
		if got := [4]int{logs(slog.LevelWarn, warn, sA), logs(slog.LevelWarn, warn, sB), logs(slog.LevelInfo, back, sA),
			logs(slog.LevelInfo, back, sB)}; got != [4]int{wantWarnA, wantWarnB, wantBackA, wantBackB} {
			t.Fatalf("logs (warn A, warn B, back A, back B) = %v, want %v", got, [4]int{wantWarnA, wantWarnB, wantBackA, wantBackB})
		}
		for _, s := range []domain.Sale{sC, sD, sE} {
			if n := logs(slog.LevelWarn, warn, s) + logs(slog.LevelInfo, back, s); n != 0 {
				t.Fatalf("%d log records about skipped sale %s", n, s.ID)
			}
		}
	}
	driftA := func(redis, pg int) app.Drift {
		return app.Drift{TenantID: tid, SaleID: sA.ID, RedisConfirmed: redis, PostgresSold: pg, Drift: redis - pg}
	}
	driftB := func(redis, pg int) app.Drift {
		return app.Drift{TenantID: tid, SaleID: sB.ID, RedisConfirmed: redis, PostgresSold: pg, Drift: redis - pg}
	}

	check(driftA(4, 4), driftB(3, 2))
	checkLogs(0, 1, 0, 0) // A was in step from the start: nothing to say
	check(driftA(4, 4), driftB(3, 2))
	checkLogs(0, 1, 0, 0) // unchanged drift: not logged again
	if n := len(e.counters.driftCalls()); n != 4 {
		t.Fatalf("RecordDrift called %d times over two checks of two sales, want 4", n)
	}

	// B's missing event arrives: back in step, said once.
	e.counters.setSold(tid, sB.ID, 3)
	check(driftA(4, 4), driftB(3, 3))
	checkLogs(0, 1, 0, 1)
	check(driftA(4, 4), driftB(3, 3))
	checkLogs(0, 1, 0, 1)

	// A's pending order becomes durable in Redis before its event is counted: drift 1 for A.
	if err := e.inv.MarkConfirmed(ctx, pendingA); err != nil {
		t.Fatal(err)
	}
	check(driftA(5, 4), driftB(3, 3))
	checkLogs(1, 1, 0, 1)
	// B over-counted (negative drift), then by another amount: each change logged once.
	e.counters.setSold(tid, sB.ID, 5)
	check(driftA(5, 4), driftB(3, 5))
	checkLogs(1, 2, 0, 1)
	e.counters.setSold(tid, sB.ID, 4)
	check(driftA(5, 4), driftB(3, 4))
	check(driftA(5, 4), driftB(3, 4))
	checkLogs(1, 3, 0, 1)
	// A's event arrives.
	e.counters.setSold(tid, sA.ID, 5)
	check(driftA(5, 5), driftB(3, 4))
	checkLogs(1, 3, 1, 1)
}

func TestSyncInventoryCheckFailures(t *testing.T) {
	t.Parallel()
	for name, inject := range map[string]func(e *env){
		"counter unreadable": func(e *env) { e.counters.SoldErr = errBoom },
		"drift unwritable":   func(e *env) { e.counters.DriftErr = errBoom },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.activeSale(t, 10, 5)
			e.counters.setSold(s.TenantID, s.ID, 0)
			inject(e)
			if _, err := e.app.SyncInventory.Check(ctx); !errors.Is(err, errBoom) {
				t.Fatalf("check = %v, want the store's error", err)
			}
		})
	}
}

// The control room's figures are an admin's, and the drift they show is their tenant's.
func TestGetOverviewIsAnAdminsOfTheirTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	other := e.tenants.ensure("other", "Other").ID
	e.metrics.InventoryDrift(s.TenantID, s.ID, 2)
	e.metrics.InventoryDrift(other, uuid.New(), 7)

	if _, _, err := e.app.GetOverview.Handle(ctx, e.shopper()); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("shopper: %v, want ErrForbidden", err)
	}
	o, at, err := e.app.GetOverview.Handle(ctx, e.admin())
	if err != nil || !at.Equal(e.clock.Now()) {
		t.Fatalf("admin: at %v, %v", at, err)
	}
	if len(o.Drift) != 1 || o.Drift[s.ID] != 2 {
		t.Fatalf("drift %v, want only the tenant's sale at 2", o.Drift)
	}
}
