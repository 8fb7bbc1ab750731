package app_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// viewers are the callers GetOrder is asked by, and whether each may see the buyer's order.
func viewers(e *env, buyer domain.Principal) []struct {
	name string
	p    domain.Principal
	sees bool
} {
	other := e.tenants.ensure("other", "Other merchant")
	// Same user id in another tenant: ids alone must not grant access.
	twin := buyer
	twin.TenantID = other.ID
	return []struct {
		name string
		p    domain.Principal
		sees bool
	}{
		{"buyer", buyer, true},
		{"admin of the tenant", e.admin(), true},
		{"another shopper", e.shopper(), false},
		{"admin of another tenant", e.adminOf(other.ID), false},
		{"buyer's id in another tenant", twin, false},
	}
}

func TestGetOrderDurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	buyer := e.shopper()
	r := e.reserve(t, s, buyer, 1)
	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r}); err != nil {
		t.Fatalf("write order: %v", err)
	}
	want, _ := e.orders.get(r.OrderID)

	for _, v := range viewers(e, buyer) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			o, err := e.app.GetOrder.Handle(ctx, v.p, r.OrderID)
			if !v.sees {
				wantErr(t, err, domain.ErrOrderNotFound)
				if o != (domain.Order{}) {
					t.Errorf("leaked %+v", o)
				}
				return
			}
			if err != nil || o != want {
				t.Errorf("get order = %+v, %v; want %+v", o, err, want)
			}
		})
	}
}

func TestGetOrderPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	e.activeSale(t, 10, 5) // another live sale, searched too
	buyer := e.shopper()
	r := e.reserve(t, s, buyer, 2)

	for _, v := range viewers(e, buyer) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			o, err := e.app.GetOrder.Handle(ctx, v.p, r.OrderID)
			if !v.sees {
				wantErr(t, err, domain.ErrOrderNotFound)
				return
			}
			if err != nil {
				t.Fatalf("get order: %v", err)
			}
			if !reflect.DeepEqual(o, r.Order()) || o.Status != domain.OrderPending || o.AmountCents != 2*s.PriceCents {
				t.Errorf("order = %+v, want the pending %+v", o, r.Order())
			}
		})
	}
}

func TestGetOrderFromInventoryStates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		arrange func(e *env, r domain.Reservation)
		want    domain.OrderStatus // "" for not found
	}{
		{"failed before it became durable", func(e *env, r domain.Reservation) { e.inv.release(r) }, domain.OrderFailed},
		{"confirmed in Redis only", func(e *env, r domain.Reservation) { _ = e.inv.MarkConfirmed(ctx, r) }, ""},
		{"sale beyond the horizon", func(e *env, _ domain.Reservation) {
			e.clock.Advance(2*time.Hour + e.settings.SaleHorizon)
			e.sales.closeEnded(e.clock.Now().Add(-e.settings.SaleHorizon)) // as the reconciler's pass does
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.activeSale(t, 10, 5)
			buyer := e.shopper()
			r := e.reserve(t, s, buyer, 1)
			tc.arrange(e, r)
			o, err := e.app.GetOrder.Handle(ctx, buyer, r.OrderID)
			if tc.want == "" {
				wantErr(t, err, domain.ErrOrderNotFound)
				return
			}
			if err != nil || o.Status != tc.want || o.ID != r.OrderID {
				t.Errorf("get order = %+v, %v; want status %s", o, err, tc.want)
			}
		})
	}
}

// An order the worker writes and marks confirmed between GetOrder's read of PostgreSQL and its
// look in the inventory is the confirmed order, not a 404.
func TestGetOrderConfirmedWhileRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	buyer := e.shopper()
	r := e.reserve(t, s, buyer, 1)
	written := false
	e.orders.AfterOrder = func() {
		if written {
			return
		}
		written = true
		if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r}); err != nil {
			t.Errorf("write order: %v", err)
		}
		if err := e.inv.MarkConfirmed(ctx, r); err != nil {
			t.Errorf("mark confirmed: %v", err)
		}
	}
	o, err := e.app.GetOrder.Handle(ctx, buyer, r.OrderID)
	if err != nil || o.ID != r.OrderID || o.Status != domain.OrderConfirmed {
		t.Fatalf("get order = %+v, %v; want the confirmed order", o, err)
	}
}

func TestGetOrderRepositoryError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.orders.OrderErr = errBoom
	_, err := e.app.GetOrder.Handle(ctx, e.shopper(), uuid.New())
	wantErr(t, err, errBoom)
	if e.inv.count("FindReservation") != 0 {
		t.Error("fell back to the inventory on a repository error")
	}
}

func TestListOrdersPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	buyer := e.shopper()
	s := e.newSale(10, 5, -time.Hour, time.Hour)
	base := e.clock.Now()
	order := func(p domain.Principal, key string, at time.Time) domain.Order {
		return domain.Order{ID: uuid.New(), TenantID: p.TenantID, SaleID: s.ID, UserID: p.UserID, Quantity: 1,
			IdempotencyKey: key, Status: domain.OrderConfirmed, CreatedAt: at}
	}
	var all []domain.Order // newest first
	for i := 4; i >= 0; i-- {
		o := order(buyer, fmt.Sprint(i), base.Add(time.Duration(i)*time.Minute))
		e.orders.put(o)
		all = append(all, o)
	}
	e.orders.put(order(e.shopper(), "0", base)) // someone else's

	cases := []struct {
		limit    int
		want     int
		wantNext bool
	}{
		{limit: 1, want: 1, wantNext: true},
		{limit: 4, want: 4, wantNext: true},
		{limit: 5, want: 5, wantNext: false}, // exactly all: no empty page after
		{limit: 6, want: 5, wantNext: false},
	}
	for _, tc := range cases {
		page, err := e.app.ListOrders.Handle(ctx, app.ListOrders{Principal: buyer, Limit: tc.limit})
		if err != nil {
			t.Fatalf("limit %d: %v", tc.limit, err)
		}
		if !reflect.DeepEqual(page.Orders, all[:tc.want]) {
			t.Errorf("limit %d: orders %v, want the newest %d", tc.limit, ids(page.Orders), tc.want)
		}
		if (page.Next != nil) != tc.wantNext {
			t.Errorf("limit %d: next = %v, want set: %v", tc.limit, page.Next, tc.wantNext)
		}
		if page.Next != nil {
			last := page.Orders[len(page.Orders)-1]
			if *page.Next != (ports.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}) {
				t.Errorf("limit %d: next = %+v, want the last order's position", tc.limit, *page.Next)
			}
		}
	}

	// Following the cursor visits every order once.
	var walked []domain.Order
	q := app.ListOrders{Principal: buyer, Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("cursor never ends")
		}
		page, err := e.app.ListOrders.Handle(ctx, q)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		walked = append(walked, page.Orders...)
		if page.Next == nil {
			break
		}
		q.After = page.Next
	}
	if !reflect.DeepEqual(walked, all) {
		t.Errorf("walked %v, want %v", ids(walked), ids(all))
	}
}

func ids(os []domain.Order) []uuid.UUID {
	out := make([]uuid.UUID, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

func TestRetryDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 2)
	e.inv.release(r)
	e.queue.put(r, ports.TaskArchived)

	_, err := e.app.RetryDeadLetter.Handle(ctx, e.shopper(), r.OrderID)
	wantErr(t, err, domain.ErrForbidden)
	_, err = e.app.RetryDeadLetter.Handle(ctx, e.adminOf(e.tenants.ensure("other", "Other").ID), r.OrderID)
	wantErr(t, err, domain.ErrOrderNotFound)
	if e.inv.count("Rereserve") != 0 {
		t.Fatal("stock retaken for a caller who may not retry")
	}

	o, err := e.app.RetryDeadLetter.Handle(ctx, e.admin(), r.OrderID)
	if err != nil || o.ID != r.OrderID || o.Status != domain.OrderPending {
		t.Fatalf("retry = %+v, %v; want the order pending again", o, err)
	}
	if got := e.remaining(t, s); got != 8 {
		t.Errorf("remaining %d, want 8", got)
	}
	if tk, _ := e.queue.task(r.OrderID); tk.State != ports.TaskQueued {
		t.Errorf("task %s, want queued", tk.State)
	}
}
