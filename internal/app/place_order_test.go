package app_test

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

func TestPlaceOrderAcceptsQueuesAndReplays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 2)
	buyer := e.shopper()
	cmd := app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 2, IdempotencyKey: "k1"}

	res, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	o := res.Order
	if res.Replayed {
		t.Error("first answer marked replayed")
	}
	if o.Status != domain.OrderPending || o.Quantity != 2 || o.SaleID != s.ID || o.UserID != buyer.UserID ||
		o.TenantID != buyer.TenantID || o.IdempotencyKey != "k1" {
		t.Errorf("order = %+v", o)
	}
	if o.UnitPriceCents != s.PriceCents || o.AmountCents != 2*s.PriceCents || o.Currency != s.Currency {
		t.Errorf("order price = %d x2 = %d %s, want %d x2 %s", o.UnitPriceCents, o.AmountCents, o.Currency, s.PriceCents, s.Currency)
	}
	if got := e.remaining(t, s); got != 8 {
		t.Errorf("remaining = %d, want 8", got)
	}

	// Enqueued for the worker, with the reservation the inventory recorded.
	tk, ok := e.queue.task(o.ID)
	if !ok || tk.State != ports.TaskQueued {
		t.Fatalf("task for %s = %+v, %v; want queued", o.ID, tk, ok)
	}
	stored, _ := e.inv.reservation(s.TenantID, s.ID, o.ID)
	if !reflect.DeepEqual(tk.R, stored) {
		t.Errorf("queued reservation = %+v, want the stored one %+v", tk.R, stored)
	}

	// The answer is stored for replay.
	rec, ok := e.inv.record(scopeOf(buyer, "k1"))
	if !ok || !rec.Done || rec.Outcome.Order == nil || rec.Outcome.Order.ID != o.ID || rec.Outcome.ErrCode != "" {
		t.Fatalf("idempotency record = %+v, %v; want done with order %s", rec, ok, o.ID)
	}
	if got := e.inv.ttl(scopeOf(buyer, "k1")); got != e.settings.IdempotencyTTL {
		t.Errorf("answer kept for %v, want %v", got, e.settings.IdempotencyTTL)
	}

	// The same request again is the same answer, without touching the stock.
	again, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !again.Replayed || !reflect.DeepEqual(again.Order, o) {
		t.Errorf("replay = %+v, want replayed %+v", again, o)
	}
	if n := e.inv.count("Purchase"); n != 2 {
		t.Errorf("Purchase called %d times, want 2", n)
	}
	if n := e.remaining(t, s); n != 8 {
		t.Errorf("remaining %d after the replay, want 8: the replay takes nothing", n)
	}
	if n := e.queue.count("EnqueueOrder"); n != 1 {
		t.Errorf("EnqueueOrder called %d times, want 1", n)
	}
	if got := e.remaining(t, s); got != 8 {
		t.Errorf("remaining after replay = %d, want 8", got)
	}
}

func TestPlaceOrderKeyReusedWithAnotherRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(c *app.PlaceOrder, other domain.Sale)
	}{
		{"other quantity", func(c *app.PlaceOrder, _ domain.Sale) { c.Quantity = 2 }},
		{"other sale", func(c *app.PlaceOrder, other domain.Sale) { c.SaleID = other.ID }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s, other := e.activeSale(t, 10, 5), e.activeSale(t, 10, 5)
			cmd := app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}
			if _, err := e.app.PlaceOrder.Handle(ctx, cmd); err != nil {
				t.Fatalf("first request: %v", err)
			}
			tc.change(&cmd, other)
			_, err := e.app.PlaceOrder.Handle(ctx, cmd)
			wantErr(t, err, domain.ErrIdempotencyKeyReused)
			if n := e.inv.count("Purchase"); n != 2 {
				t.Errorf("Purchase called %d times, want 2", n)
			}
			if e.remaining(t, s) != 9 || e.remaining(t, other) != 10 {
				t.Errorf("stock taken by the refused request: remaining %d and %d", e.remaining(t, s), e.remaining(t, other))
			}
		})
	}
}

// A retry that races the first request, while the first holds the key, is told to wait: the
// first request is held between its purchase and its answer by channels, no sleeping.
func TestPlaceOrderKeyInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	cmd := app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}

	entered, release := make(chan struct{}), make(chan struct{})
	var purchases atomic.Int32
	e.inv.AfterPurchase = func() {
		if purchases.Add(1) == 1 {
			close(entered)
			<-release
		}
	}
	type result struct {
		res app.PlaceOrderResult
		err error
	}
	first := make(chan result, 1)
	go func() {
		res, err := e.app.PlaceOrder.Handle(ctx, cmd)
		first <- result{res, err}
	}()
	<-entered

	_, err := e.app.PlaceOrder.Handle(ctx, cmd)
	wantErr(t, err, domain.ErrIdempotencyInFlight)
	other := cmd
	other.Quantity = 2
	_, err = e.app.PlaceOrder.Handle(ctx, other)
	wantErr(t, err, domain.ErrIdempotencyKeyReused)

	close(release)
	r := <-first
	if r.err != nil {
		t.Fatalf("first request: %v", r.err)
	}
	if n := e.remaining(t, s); n != 9 {
		t.Errorf("remaining %d, want 9: stock taken once", n)
	}
	// Once the first request finished, the retry gets its answer.
	again, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil || !again.Replayed || again.Order.ID != r.res.Order.ID {
		t.Errorf("retry after completion = %+v, %v; want replay of %s", again, err, r.res.Order.ID)
	}
}

// Refusals a retry would meet again are final answers: recorded and replayed, even after the
// situation changed.
func TestPlaceOrderRefusalsAreRecordedAndReplayed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup returns the sale to buy from; the buyer then asks for qty.
		setup func(t *testing.T, e *env, buyer domain.Principal) domain.Sale
		qty   int
		want  *domain.Error
		// change, if set, alters the sale so that a new request would now succeed.
		change func(t *testing.T, e *env, s domain.Sale, buyer domain.Principal)
	}{
		{
			name: "sold out",
			setup: func(t *testing.T, e *env, _ domain.Principal) domain.Sale {
				s := e.activeSale(t, 2, 5)
				e.reserve(t, s, e.shopper(), 2)
				return s
			},
			qty:  1,
			want: domain.ErrSoldOut,
			change: func(t *testing.T, e *env, s domain.Sale, _ domain.Principal) {
				s.TotalStock = 10
				e.loadInventory(t, s, 0)
				// Stock came back behind the use cases' back (no live event): this node goes on
				// answering sold out from memory for at most SoldOutTTL.
				e.clock.Advance(e.settings.SoldOutTTL)
			},
		},
		{
			name: "per-user limit",
			setup: func(t *testing.T, e *env, buyer domain.Principal) domain.Sale {
				s := e.activeSale(t, 10, 2)
				e.reserve(t, s, buyer, 2)
				return s
			},
			qty:  1,
			want: domain.ErrPurchaseLimitExceeded,
			change: func(t *testing.T, e *env, s domain.Sale, _ domain.Principal) {
				s.PerUserLimit = 5
				e.loadInventory(t, s, 0)
			},
		},
		{
			name: "insufficient stock",
			setup: func(t *testing.T, e *env, _ domain.Principal) domain.Sale {
				return e.activeSale(t, 3, 5)
			},
			qty:  4,
			want: domain.ErrInsufficientStock,
		},
		{
			name: "sale ended",
			setup: func(t *testing.T, e *env, _ domain.Principal) domain.Sale {
				s := e.newSale(10, 5, -2*time.Hour, -time.Hour)
				e.loadInventory(t, s, 0)
				return s
			},
			qty:  1,
			want: domain.ErrSaleEnded,
			change: func(t *testing.T, e *env, s domain.Sale, _ domain.Principal) {
				s.EndsAt = e.clock.Now().Add(time.Hour)
				e.loadInventory(t, s, 0)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			buyer := e.shopper()
			s := tc.setup(t, e, buyer)
			cmd := app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: tc.qty, IdempotencyKey: "k"}

			res, err := e.app.PlaceOrder.Handle(ctx, cmd)
			wantErr(t, err, tc.want)
			if res.Replayed {
				t.Error("first refusal marked replayed")
			}
			var first *domain.Error
			if !errors.As(err, &first) {
				t.Fatalf("refusal %v is not a *domain.Error", err)
			}
			rec, ok := e.inv.record(scopeOf(buyer, "k"))
			if !ok || !rec.Done || rec.Outcome.Order != nil || rec.Outcome.ErrCode != tc.want.Code || rec.Outcome.ErrDetail != first.Detail {
				t.Fatalf("idempotency record = %+v, %v; want done with %s", rec, ok, tc.want.Code)
			}

			if tc.change != nil {
				tc.change(t, e, s, buyer)
			}
			before, _ := e.inv.state(s.TenantID, s.ID)
			again, err := e.app.PlaceOrder.Handle(ctx, cmd)
			wantErr(t, err, tc.want)
			if after, _ := e.inv.state(s.TenantID, s.ID); after.sold != before.sold {
				t.Errorf("sold %d after the replay, %d before: a replay takes nothing", after.sold, before.sold)
			}
			if !again.Replayed {
				t.Error("replayed refusal not marked replayed")
			}
			if domain.CodeOf(err) != tc.want.Code || err.Error() != first.Error() {
				t.Errorf("replayed error = %q, want %q", err, first)
			}
			if tc.change != nil { // the replay came from the record, not from the sale
				fresh := cmd
				fresh.IdempotencyKey = "fresh"
				if _, err := e.app.PlaceOrder.Handle(ctx, fresh); err != nil {
					t.Errorf("new key after the change: %v", err)
				}
			}
		})
	}
}

func TestPlaceOrderNotStartedIsNotRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(10, 2, time.Hour, 3*time.Hour)
	e.loadInventory(t, s, 0)
	buyer := e.shopper()
	cmd := app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "early"}

	_, err := e.app.PlaceOrder.Handle(ctx, cmd)
	wantErr(t, err, domain.ErrSaleNotStarted)
	var de *domain.Error
	if !errors.As(err, &de) || de.Detail != domain.ErrSaleNotStarted.Detail {
		t.Errorf("error = %v, want the not-started detail", err)
	}
	if rec, ok := e.inv.record(scopeOf(buyer, "early")); ok {
		t.Fatalf("not-started refusal left a record: %+v", rec)
	}
	if n := e.inv.count("Complete"); n != 0 {
		t.Errorf("Complete called %d times, want 0", n)
	}

	e.clock.Advance(90 * time.Minute)
	res, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil {
		t.Fatalf("same key after the start: %v", err)
	}
	if res.Replayed || res.Order.Status != domain.OrderPending {
		t.Errorf("after the start = %+v, want a fresh pending order", res)
	}
}

func TestPlaceOrderUnknownSale(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		saleID func(e *env) uuid.UUID
	}{
		{"no such sale", func(*env) uuid.UUID { return uuid.New() }},
		{"sale of another tenant", func(e *env) uuid.UUID {
			other := e.tenants.ensure("other", "Other merchant")
			s := e.newSale(10, 2, -time.Hour, time.Hour)
			s.ID, s.TenantID = uuid.New(), other.ID
			e.sales.put(s)
			if _, err := e.inv.load(s, 0); err != nil {
				panic(err)
			}
			return s.ID
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			buyer := e.shopper()
			_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: buyer, SaleID: tc.saleID(e), Quantity: 1, IdempotencyKey: "k"})
			wantErr(t, err, domain.ErrSaleNotFound)
			if _, ok := e.inv.record(scopeOf(buyer, "k")); ok {
				t.Error("claim not forgotten")
			}
			if n := e.inv.count("Forget"); n != 1 {
				t.Errorf("Forget called %d times, want 1", n)
			}
			if n := e.inv.count("SyncSale"); n != 0 {
				t.Errorf("SyncSale called %d times for an unknown sale", n)
			}
		})
	}
}

// Redis does not know a live sale (created while it was down, or it lost its data): its
// inventory is restored from PostgreSQL's confirmed orders (units, allowances, keys) and fenced
// for a moment, so that orders accepted before the loss land first; a retried key replays its
// order at once; after the fence the sale goes on, never overselling.
func TestPlaceOrderRestoresALostInventory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(5, 5, -time.Hour, time.Hour) // in the repository only
	alice, bob := e.shopper(), e.shopper()
	first := e.durable(s, alice, 3, "alice-1")

	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: bob, SaleID: s.ID, Quantity: 2, IdempotencyKey: "bob-1"})
	wantErr(t, err, domain.ErrUnavailable)
	if n := e.inv.count("RestoreSale"); n != 1 {
		t.Errorf("RestoreSale called %d times, want 1", n)
	}
	st, _ := e.inv.state(s.TenantID, s.ID)
	if st.sold != 3 || st.remaining != 2 || st.buyers[alice.UserID] != 3 {
		t.Errorf("restored inventory sold %d remaining %d, alice holds %d; want 3, 2, 3", st.sold, st.remaining, st.buyers[alice.UserID])
	}
	if _, ok := e.inv.record(scopeOf(bob, "bob-1")); ok {
		t.Error("claim of a fenced purchase not forgotten")
	}
	// Alice retries her purchase: her order, not a second one, even while fenced.
	again, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: alice, SaleID: s.ID, Quantity: 3, IdempotencyKey: "alice-1"})
	if err != nil || again.Order.ID != first.ID {
		t.Fatalf("alice's retry = %+v, %v; want her order %s", again, err, first.ID)
	}

	e.clock.Advance(e.settings.RestoreFence)
	res, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: bob, SaleID: s.ID, Quantity: 2, IdempotencyKey: "bob-1"})
	if err != nil {
		t.Fatalf("bob after the fence: %v", err)
	}
	if _, ok := e.queue.task(res.Order.ID); !ok {
		t.Error("order not queued")
	}
	_, err = e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	wantErr(t, err, domain.ErrSoldOut)
}

// Once the stock is taken the order is accepted; a queue failure is the reconciler's problem.
func TestPlaceOrderEnqueueFailureStillAccepts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 2)
	buyer := e.shopper()
	e.queue.EnqueueErr = errors.New("queue unavailable")

	res, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	if res.Order.Status != domain.OrderPending {
		t.Errorf("status = %s, want pending", res.Order.Status)
	}
	r, ok := e.inv.reservation(s.TenantID, s.ID, res.Order.ID)
	if !ok || r.Status != domain.OrderPending || !e.inv.isAwaited(r) {
		t.Fatalf("reservation = %+v, %v; want pending and awaited", r, ok)
	}
	if rec, _ := e.inv.record(scopeOf(buyer, "k")); rec.Outcome.Order == nil || rec.Outcome.Order.ID != res.Order.ID {
		t.Errorf("accepted order not stored for replay: %+v", rec)
	}
	if e.log.logged(slog.LevelWarn, "not queued") != 1 {
		t.Error("queue failure not logged")
	}

	// The reconciler queues it once the grace period is over.
	e.queue.EnqueueErr = nil
	e.clock.Advance(e.settings.ReconcileGrace + time.Second)
	rep, err := e.app.Reconcile.Handle(ctx)
	if err != nil || rep.Requeued != 1 {
		t.Fatalf("reconcile = %+v, %v; want 1 requeued", rep, err)
	}
	if _, ok := e.queue.task(res.Order.ID); !ok {
		t.Error("reconciler did not queue the order")
	}
}

// A retry whose claim expired reaches the inventory again; the reservation script recognises the
// key, and the queue already has the task: the same order is the answer, not an error.
func TestPlaceOrderAlreadyQueuedIsNotAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 2)
	buyer := e.shopper()
	cmd := app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}
	first, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	e.inv.forget(scopeOf(buyer, "k")) // the stored answer expired

	again, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if again.Order.ID != first.Order.ID {
		t.Errorf("retry order %s, want the first %s", again.Order.ID, first.Order.ID)
	}
	if n := e.queue.count("EnqueueOrder"); n != 2 {
		t.Errorf("EnqueueOrder called %d times, want 2 (the second refused as already queued)", n)
	}
	if e.queue.size() != 1 || e.remaining(t, s) != 9 {
		t.Errorf("tasks %d remaining %d, want 1 and 9", e.queue.size(), e.remaining(t, s))
	}
	if n := e.log.logged(slog.LevelError, "not queued"); n != 0 {
		t.Errorf("already-queued logged as a failure %d times", n)
	}
}

func TestPlaceOrderRejectedBeforeClaiming(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cmd  func(e *env, s domain.Sale) app.PlaceOrder
		want error
	}{
		{"admin", func(e *env, s domain.Sale) app.PlaceOrder {
			return app.PlaceOrder{Principal: e.admin(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}
		}, domain.ErrForbidden},
		{"no role", func(e *env, s domain.Sale) app.PlaceOrder {
			p := e.shopper()
			p.Role = ""
			return app.PlaceOrder{Principal: p, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}
		}, domain.ErrForbidden},
		{"zero quantity", func(e *env, s domain.Sale) app.PlaceOrder {
			return app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 0, IdempotencyKey: "k"}
		}, domain.ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.activeSale(t, 10, 2)
			_, err := e.app.PlaceOrder.Handle(ctx, tc.cmd(e, s))
			wantErr(t, err, tc.want)
			if n := e.inv.count("Purchase"); n != 0 {
				t.Errorf("%d purchases taken to the store; want none", n)
			}
		})
	}
}

func TestPlaceOrderUnexpectedStoreError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 2)
	buyer := e.shopper()
	cmd := app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}
	boom := errors.New("connection reset by peer")
	e.inv.PurchaseErr = boom

	_, err := e.app.PlaceOrder.Handle(ctx, cmd)
	wantErr(t, err, boom)
	if err == boom || domain.CodeOf(err) != "" {
		t.Errorf("error = %v, want it wrapped and unclassified", err)
	}
	if _, ok := e.inv.record(scopeOf(buyer, "k")); ok {
		t.Error("claim not forgotten after an unexpected error")
	}
	if n := e.inv.count("Complete"); n != 0 {
		t.Errorf("unexpected error stored for replay (%d Complete calls)", n)
	}

	// The key is free again: a retry is processed, not told to wait or replayed.
	e.inv.PurchaseErr = nil
	res, err := e.app.PlaceOrder.Handle(ctx, cmd)
	if err != nil || res.Replayed {
		t.Fatalf("retry = %+v, %v; want a fresh order", res, err)
	}
}

// A failure to seed the inventory is unexpected too: wrapped, and the claim forgotten.
func TestPlaceOrderSeedFailureForgetsClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(5, 5, -time.Hour, time.Hour)
	buyer := e.shopper()
	e.orders.ConfirmedErr = fmt.Errorf("pg: %w", errors.New("too many connections"))

	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	wantErr(t, err, e.orders.ConfirmedErr)
	if _, ok := e.inv.record(scopeOf(buyer, "k")); ok {
		t.Error("claim not forgotten")
	}
}

// A purchase that finds the inventory store rolled back is answered 503 (retry shortly), is not
// stored for replay, and has this node rebuild the sale's inventory and take again the stock of
// the orders it accepted lately: the store lost their reservations (only the one PostgreSQL
// has is back with the rebuild), and new purchases must not get that stock first.
func TestPlaceOrderRolledBackStoreReadoptsRecentOrders(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *app.Settings) { s.RestoreFence = 3 * time.Second })
	s := e.activeSale(t, 10, 2)
	var accepted []domain.Order
	for i := range 3 {
		res, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1,
			IdempotencyKey: fmt.Sprint("k", i)})
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, res.Order)
	}
	first, _ := e.inv.reservation(s.TenantID, s.ID, accepted[0].ID)
	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: first, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	e.inv.mem.RollBack(s.TenantID, s.ID, 3) // the three reservations are gone; PostgreSQL has the first
	buyer := e.shopper()
	e.inv.PurchaseErr = errors.Join(domain.Fenced(), ports.ErrRolledBack)
	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	wantErr(t, err, domain.ErrUnavailable)
	if _, ok := e.inv.record(scopeOf(buyer, "k")); ok {
		t.Error("claim kept: the retry must be processed afresh")
	}
	if got := e.remaining(t, s); got != 7 {
		t.Errorf("remaining after the rebuild %d, want 7: the three accepted orders hold their stock", got)
	}
	for _, o := range accepted {
		if r, ok := e.inv.reservation(s.TenantID, s.ID, o.ID); !ok || r.Status == domain.OrderFailed {
			t.Errorf("order %s after the rebuild: %+v (%v), want its stock held", o.ID, r, ok)
		}
	}
	if e.log.logged(slog.LevelWarn, "recent orders taken again") != 1 {
		t.Error("the rebuild is not logged")
	}
	e.inv.PurchaseErr = nil
	_, err = e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	wantErr(t, err, domain.ErrUnavailable) // fenced: orders on their way land first
}

// Taking the recent orders again may outlast the fence (a slow store, a storm of logins): the
// node holds the fence until it is done, so no new purchase takes the stock they need.
func TestPlaceOrderReadoptHoldsTheFenceUntilDone(t *testing.T) {
	t.Parallel()
	const fence = 300 * time.Millisecond
	e := newEnvWith(t, func(s *app.Settings) { s.RestoreFence = fence })
	s := e.activeSale(t, 3, 1)
	var accepted []domain.Order
	for i := range 2 {
		res, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1,
			IdempotencyKey: fmt.Sprint("k", i)})
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, res.Order)
	}
	e.inv.mem.RollBack(s.TenantID, s.ID, 2) // both reservations gone, nothing in PostgreSQL
	var during []error
	var slow sync.Once // the orders are taken again at once: the first is slow
	e.inv.BeforeAdopt = func() {
		slow.Do(func() {
			e.clock.Advance(time.Second) // adoption is slow: the first fence is long over
			time.Sleep(3 * fence / 2)    // the node renews it meanwhile
			e.inv.PurchaseErr = nil
			for range 2 {
				_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1,
					IdempotencyKey: "new"})
				during = append(during, err)
			}
		})
	}
	e.inv.PurchaseErr = errors.Join(domain.Fenced(), ports.ErrRolledBack)
	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	wantErr(t, err, domain.ErrUnavailable)
	if len(during) != 2 {
		t.Fatalf("%d purchases during the readoption, want 2", len(during))
	}
	for _, err := range during {
		wantErr(t, err, domain.ErrUnavailable)
	}
	for _, o := range accepted {
		if r, ok := e.inv.reservation(s.TenantID, s.ID, o.ID); !ok || r.Status == domain.OrderFailed {
			t.Errorf("order %s after the readoption: %+v (%v), want its stock held", o.ID, r, ok)
		}
	}
}
