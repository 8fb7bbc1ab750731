package app_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

func TestWriteOrderConfirms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 3)
	// The task payload is stale; the inventory's copy is authoritative.
	payload := r
	payload.UnitPriceCents, payload.Currency = 1, "XXX"

	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: payload}); err != nil {
		t.Fatalf("write order: %v", err)
	}
	o, ok := e.orders.get(r.OrderID)
	if !ok {
		t.Fatal("order not saved")
	}
	if o.Status != domain.OrderConfirmed || o.ConfirmedAt == nil || !o.ConfirmedAt.Equal(e.clock.Now()) {
		t.Errorf("order status %s confirmed at %v, want confirmed at %v", o.Status, o.ConfirmedAt, e.clock.Now())
	}
	if o.UnitPriceCents != s.PriceCents || o.AmountCents != 3*s.PriceCents || o.Currency != s.Currency {
		t.Errorf("order price %d (%d) %s, want %d (%d) %s", o.UnitPriceCents, o.AmountCents, o.Currency,
			s.PriceCents, 3*s.PriceCents, s.Currency)
	}
	if o.UserID != r.UserID || o.Quantity != 3 || !o.CreatedAt.Equal(r.CreatedAt) || o.IdempotencyKey != r.IdempotencyKey {
		t.Errorf("order = %+v, want it to match reservation %+v", o, r)
	}
	cur, _ := e.inv.reservation(s.TenantID, s.ID, r.OrderID)
	if cur.Status != domain.OrderConfirmed || e.inv.isAwaited(cur) {
		t.Errorf("reservation %s, awaited %v; want confirmed and no longer awaited", cur.Status, e.inv.isAwaited(cur))
	}

	// A redelivered task is harmless.
	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: payload}); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if got, _ := e.orders.get(r.OrderID); got != o {
		t.Errorf("redelivery changed the order: %+v", got)
	}
}

// The use case decides what is published: the confirmed order goes with its order.confirmed
// event, stamped with the worker's clock (not the reservation's time), and with nothing else.
func TestWriteOrderSavesTheConfirmedEventStampedWithItsClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 2)
	e.clock.Advance(90 * time.Second) // the worker confirms later than the buyer reserved
	confirmedAt := e.clock.Now()

	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r}); err != nil {
		t.Fatalf("write order: %v", err)
	}
	o, ok := e.orders.get(r.OrderID)
	if !ok {
		t.Fatal("order not saved")
	}
	want := domain.OrderConfirmedEvent(o, confirmedAt)
	events := e.orders.savedEvents()
	if len(events) != 1 {
		t.Fatalf("saved with %d events, want the order.confirmed event alone: %+v", len(events), events)
	}
	got := events[0]
	if got.ID != want.ID || got.TenantID != o.TenantID || got.Topic != domain.TopicOrderConfirmed ||
		got.Key != o.ID.String() || got.Type != domain.EventOrderConfirmed || !got.CreatedAt.Equal(confirmedAt) ||
		!bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("event %s %s/%s key %s tenant %s at %v, payload %s;\nwant %s %s/%s key %s tenant %s at %v, payload %s",
			got.ID, got.Topic, got.Type, got.Key, got.TenantID, got.CreatedAt, got.Payload,
			want.ID, want.Topic, want.Type, want.Key, want.TenantID, want.CreatedAt, want.Payload)
	}
	payload, err := domain.DecodeOrderConfirmed(got.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !payload.OccurredAt.Equal(confirmedAt) || !payload.OrderedAt.Equal(r.CreatedAt) || payload.Quantity != 2 {
		t.Errorf("payload %+v, want occurred at %v, ordered at %v, 2 units", payload, confirmedAt, r.CreatedAt)
	}

	// Redelivered later: the order is there already, so no second event.
	e.clock.Advance(time.Minute)
	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r}); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if n := len(e.orders.savedEvents()); n != 1 {
		t.Errorf("%d events after a redelivery, want 1", n)
	}
}

// What a failed write leads to: a retry, or, once ORDER_ATTEMPTS permanent failures or the
// retry budget of an outage are spent, the order given up (recorded failed, stock back) and the
// task ended. Nothing is given up while PostgreSQL cannot say whether the order is there, or
// cannot record its failure.
func TestWriteOrderSaveFailures(t *testing.T) {
	t.Parallel()
	transient := errors.New("connection refused")
	permanent := fmt.Errorf("idempotency key taken by another order: %w", domain.ErrPermanent)
	failConfirmed := func(err error) func(domain.Order) (bool, error) {
		return func(o domain.Order) (bool, error) {
			if o.Status == domain.OrderConfirmed {
				return false, err
			}
			return true, nil
		}
	}
	failAll := func(err error) func(domain.Order) (bool, error) {
		return func(domain.Order) (bool, error) { return false, err }
	}
	cases := []struct {
		name         string
		onSave       func(domain.Order) (bool, error)
		confirmedErr error
		attempt      int  // 1 if zero
		late         bool // the retry budget is spent

		wantDone      bool  // the task ends well: no error
		wantErr       error // nil: only that it fails
		wantPermanent bool
		wantReleased  bool               // stock and allowance given back
		wantRes       domain.OrderStatus // reservation status afterwards
		wantStored    domain.OrderStatus // order in the repository, "" for none
	}{
		{
			name: "outage within the budget: retried, nothing released", onSave: failConfirmed(transient), attempt: 50,
			wantErr: transient, wantRes: domain.OrderPending,
		},
		{
			name: "outage past the budget: given up, recorded failed, released", onSave: failConfirmed(transient), late: true,
			wantErr: transient, wantPermanent: true, wantReleased: true, wantRes: domain.OrderFailed, wantStored: domain.OrderFailed,
		},
		{
			name: "past the budget, the failure cannot be recorded: nothing released, retried", onSave: failAll(transient), late: true,
			wantErr: transient, wantRes: domain.OrderPending,
		},
		{
			name: "refused, attempts left: retried, nothing released", onSave: failAll(permanent), attempt: 2,
			wantRes: domain.OrderPending,
		},
		{
			name: "refused on the last attempt: given up, released", onSave: failAll(permanent), attempt: 3,
			wantErr: permanent, wantPermanent: true, wantReleased: true, wantRes: domain.OrderFailed,
		},
		{
			name:   "commit landed but answer lost: confirmed, not released",
			onSave: func(o domain.Order) (bool, error) { return true, transient }, late: true,
			wantDone: true, wantRes: domain.OrderConfirmed, wantStored: domain.OrderConfirmed,
		},
		{
			name: "repository cannot tell whether it is confirmed: nothing released", onSave: failConfirmed(transient),
			confirmedErr: errors.New("pg down"), late: true,
			wantErr: transient, wantRes: domain.OrderPending,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.activeSale(t, 10, 5)
			buyer := e.shopper()
			r := e.reserve(t, s, buyer, 2)
			e.orders.OnSave = tc.onSave
			e.orders.ConfirmedErr = tc.confirmedErr
			if tc.late {
				e.clock.Advance(e.settings.OrderRetryBudget)
			}
			attempt := max(tc.attempt, 1)

			err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: attempt})
			if (err == nil) != tc.wantDone {
				t.Fatalf("write order: %v, want done %v", err, tc.wantDone)
			}
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr)
			}
			if got := errors.Is(err, domain.ErrPermanent); got != tc.wantPermanent {
				t.Errorf("errors.Is(err, ErrPermanent) = %v (%v), want %v", got, err, tc.wantPermanent)
			}

			st, _ := e.inv.state(s.TenantID, s.ID)
			wantRemaining, wantBought := 8, 2
			if tc.wantReleased {
				wantRemaining, wantBought = 10, 0
			}
			if st.remaining != wantRemaining || st.buyers[buyer.UserID] != wantBought {
				t.Errorf("remaining %d, bought %d; want %d and %d", st.remaining, st.buyers[buyer.UserID], wantRemaining, wantBought)
			}
			if wantCalls := map[bool]int{true: 1, false: 0}[tc.wantReleased]; e.inv.count("Release") != wantCalls {
				t.Errorf("Release called %d times, want %d", e.inv.count("Release"), wantCalls)
			}
			cur, _ := e.inv.reservation(s.TenantID, s.ID, r.OrderID)
			if cur.Status != tc.wantRes {
				t.Errorf("reservation status %s, want %s", cur.Status, tc.wantRes)
			}
			o, ok := e.orders.get(r.OrderID)
			switch {
			case tc.wantStored == "" && ok:
				t.Errorf("order stored as %s, want none", o.Status)
			case tc.wantStored != "" && (!ok || o.Status != tc.wantStored):
				t.Errorf("stored order %+v (%v), want status %s", o, ok, tc.wantStored)
			}
			// Only a confirmation carries an event; the failure is recorded without one.
			events := e.orders.savedEvents()
			switch {
			case tc.wantStored == domain.OrderConfirmed && (len(events) != 1 || events[0].Type != domain.EventOrderConfirmed):
				t.Errorf("saved with events %+v, want one order.confirmed", events)
			case tc.wantStored != domain.OrderConfirmed && len(events) != 0:
				t.Errorf("saved with events %+v, want none", events)
			}
		})
	}
}

// A reservation released before (an attempt gave up but could not end the task): the failure
// is recorded in PostgreSQL, if it is not yet, before the task ends.
func TestWriteOrderReleasedReservationRecordsTheFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 1)
	e.inv.release(r)
	e.orders.OnSave = func(domain.Order) (bool, error) { return false, errors.New("read-only transaction") }

	err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1})
	if err == nil || errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("error = %v, want a retry while the failure cannot be recorded", err)
	}
	e.orders.OnSave = nil
	err = e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 2})
	wantErr(t, err, domain.ErrPermanent)
	if o, ok := e.orders.get(r.OrderID); !ok || o.Status != domain.OrderFailed {
		t.Errorf("stored order %+v (%v), want failed", o, ok)
	}
	if n := e.inv.count("Release"); n != 0 {
		t.Errorf("Release called %d times, want 0", n)
	}
}

// Redis lost the reservation: the order was accepted, so it is still written from the payload.
func TestWriteOrderWithoutReservationWritesPayload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 1)
	payload := r
	payload.OrderID = [16]byte{1} // unknown to the inventory

	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: payload}); err != nil {
		t.Fatalf("write order: %v", err)
	}
	o, ok := e.orders.get(payload.OrderID)
	if !ok || o.Status != domain.OrderConfirmed || o.UnitPriceCents != r.UnitPriceCents {
		t.Errorf("order = %+v, %v; want confirmed from the payload", o, ok)
	}
}

// The inventory store lost an accepted order's reservation (Redis restarted empty or rolled
// back): the order takes its stock again before it is written, or, with no stock left for it,
// is lost with the store (recorded failed, dead-lettered), never sold twice.
func TestWriteOrderAdoptsALostReservation(t *testing.T) {
	t.Parallel()
	lost := func(e *env, s domain.Sale, qty int) domain.Reservation {
		return domain.Reservation{OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: e.shopper().UserID,
			Quantity: qty, IdempotencyKey: uuid.NewString(), UnitPriceCents: s.PriceCents, Currency: s.Currency,
			CreatedAt: e.clock.Now().Add(-time.Second), Status: domain.OrderPending}
	}
	t.Run("stock left: adopted and written", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.activeSale(t, 3, 3)
		r := lost(e, s, 2)
		if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1}); err != nil {
			t.Fatalf("write order: %v", err)
		}
		if o, ok := e.orders.get(r.OrderID); !ok || o.Status != domain.OrderConfirmed {
			t.Fatalf("order %+v (%v), want confirmed", o, ok)
		}
		if got := e.remaining(t, s); got != 1 {
			t.Errorf("remaining %d, want 1: the adopted order holds its stock", got)
		}
	})
	t.Run("inventory gone: restored from the durable orders, then adopted", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.newSale(3, 3, -time.Hour, time.Hour)
		e.durable(s, e.shopper(), 2, "before")
		r := lost(e, s, 1)
		if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1}); err != nil {
			t.Fatalf("write order: %v", err)
		}
		if st, _ := e.inv.state(s.TenantID, s.ID); st.sold != 3 || st.remaining != 0 {
			t.Errorf("inventory sold %d remaining %d, want 3 and 0", st.sold, st.remaining)
		}
	})
	t.Run("no stock left: lost with the store, never oversold", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.activeSale(t, 2, 2)
		e.reserve(t, s, e.shopper(), 2)
		r := lost(e, s, 1)
		err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1})
		wantErr(t, err, domain.ErrPermanent)
		if o, ok := e.orders.get(r.OrderID); !ok || o.Status != domain.OrderFailed {
			t.Fatalf("order %+v (%v), want recorded failed", o, ok)
		}
		if st, _ := e.inv.state(s.TenantID, s.ID); st.sold != 2 || st.remaining != 0 {
			t.Errorf("inventory sold %d remaining %d, want 2 and 0", st.sold, st.remaining)
		}
		if e.log.logged(slog.LevelError, "lost with the inventory store") != 1 {
			t.Error("the loss is not logged")
		}
	})
	t.Run("inventory awaiting its rebuild: waits for it, then adopted", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.activeSale(t, 3, 3)
		r := lost(e, s, 1)
		e.inv.mem.MarkRolledBack(s.TenantID, s.ID)
		go func() {
			time.Sleep(300 * time.Millisecond) // the worker's check, or the API node, rebuilds it
			if err := e.app.WriteOrder.Stock.RestoreSale(ctx, s.TenantID, s.ID); err != nil {
				t.Error(err)
			}
		}()
		if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1}); err != nil {
			t.Fatalf("write order: %v", err)
		}
		if o, ok := e.orders.get(r.OrderID); !ok || o.Status != domain.OrderConfirmed {
			t.Fatalf("order %+v (%v), want confirmed", o, ok)
		}
		if got := e.remaining(t, s); got != 2 {
			t.Errorf("remaining %d, want 2", got)
		}
	})
	t.Run("already durable: nothing taken", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.activeSale(t, 3, 3)
		o := e.durable(s, e.shopper(), 1, "done")
		r := lost(e, s, 1)
		r.OrderID, r.UserID, r.IdempotencyKey = o.ID, o.UserID, o.IdempotencyKey
		if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1}); err != nil {
			t.Fatalf("write order: %v", err)
		}
		if got := e.remaining(t, s); got != 3 {
			t.Errorf("remaining %d, want 3", got)
		}
	})
}
