package app_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

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

func TestWriteOrderReleasedReservationIsPermanent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 1)
	e.inv.release(r)

	err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r})
	wantErr(t, err, domain.ErrPermanent)
	if n := e.orders.count("SaveOrder"); n != 0 {
		t.Errorf("SaveOrder called %d times, want 0", n)
	}
	if n := e.inv.count("Release"); n != 0 {
		t.Errorf("Release called %d times, want 0", n)
	}
	if _, ok := e.orders.get(r.OrderID); ok {
		t.Error("an order was saved for a released reservation")
	}
}

func TestWriteOrderSaveFailures(t *testing.T) {
	t.Parallel()
	transient := errors.New("deadlock detected")
	permanent := fmt.Errorf("idempotency key taken by another order: %w", domain.ErrPermanent)
	failConfirmed := func(err error) func(domain.Order) (bool, error) {
		return func(o domain.Order) (bool, error) {
			if o.Status == domain.OrderConfirmed {
				return false, err
			}
			return true, nil
		}
	}
	cases := []struct {
		name         string
		onSave       func(domain.Order) (bool, error)
		confirmedErr error
		final        bool

		wantErr       error
		wantPermanent bool
		wantReleased  bool               // stock and allowance given back
		wantRes       domain.OrderStatus // reservation status afterwards
		wantStored    domain.OrderStatus // order in the repository, "" for none
	}{
		{
			name: "transient, not final: retried later, nothing released", onSave: failConfirmed(transient),
			wantErr: transient, wantRes: domain.OrderPending,
		},
		{
			name: "transient, final attempt: released and recorded failed", onSave: failConfirmed(transient), final: true,
			wantErr: transient, wantReleased: true, wantRes: domain.OrderFailed, wantStored: domain.OrderFailed,
		},
		{
			name:    "permanent: released at once",
			onSave:  func(domain.Order) (bool, error) { return false, permanent },
			wantErr: permanent, wantPermanent: true, wantReleased: true, wantRes: domain.OrderFailed,
		},
		{
			name:   "commit landed but answer lost: confirmed, not released",
			onSave: func(o domain.Order) (bool, error) { return true, transient }, final: true,
			wantErr: transient, wantRes: domain.OrderConfirmed, wantStored: domain.OrderConfirmed,
		},
		{
			name: "repository cannot tell whether it is confirmed: nothing released", onSave: failConfirmed(transient),
			confirmedErr: errors.New("pg down"), final: true,
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

			err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, FinalAttempt: tc.final})
			wantErr(t, err, tc.wantErr)
			if got := errors.Is(err, domain.ErrPermanent); got != tc.wantPermanent {
				t.Errorf("errors.Is(err, ErrPermanent) = %v, want %v", got, tc.wantPermanent)
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
