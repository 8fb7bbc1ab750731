package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

var orderCases = []testCase{
	{"SavedOnce", testOrderSavedOnce},
	{"ConfirmationReplacesFailure", testConfirmationReplacesFailure},
	{"IdempotencyKeyOfAnotherOrder", testIdempotencyKeyTaken},
	{"NeverWritableIsPermanent", testOrderPermanent},
	{"OrderIsTenantScoped", testOrderTenantScoped},
	{"ListOrdersKeysetPagination", testListOrdersPagination},
	{"ConfirmedOrderIDs", testConfirmedOrderIDs},
	{"SaleOrders", testSaleOrders},
	{"ReservationHighWater", testReservationHighWater},
}

// orders is a tenant with a sale and two buyers.
type orders struct {
	*Fixture
	tenant     domain.Tenant
	sale       domain.Sale
	alice, bob domain.User
}

func (f *Fixture) orders() orders {
	f.T.Helper()
	a := f.Tenant("tenant-a")
	return orders{Fixture: f, tenant: a, sale: f.Sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0),
		alice: f.User(a.ID, "alice@example.com"), bob: f.User(a.ID, "bob@example.com")}
}

func testOrderSavedOnce(t *testing.T, f *Fixture) {
	w := f.orders()
	o := f.Order(w.sale, w.alice, 2, "once", domain.OrderConfirmed, f.Now)
	f.Save(o, true)
	CheckOrder(t, f.ReadOrder(o), o)
	// The same order again, even with other values, changes nothing.
	f.Save(o, false)
	changed := o
	changed.Quantity, changed.AmountCents = 1, 1999
	f.Save(changed, false)
	CheckOrder(t, f.ReadOrder(o), o)
	// A failure never replaces a confirmation.
	failed := o
	failed.Status, failed.ConfirmedAt = domain.OrderFailed, nil
	f.Save(failed, false)
	CheckOrder(t, f.ReadOrder(o), o)
}

// A confirmation replaces a failure (a dead letter retried) and reports created=false: the row
// existed.
func testConfirmationReplacesFailure(t *testing.T, f *Fixture) {
	w := f.orders()
	failed := f.Order(w.sale, w.alice, 1, "retried", domain.OrderFailed, f.Now)
	f.Save(failed, true)
	CheckOrder(t, f.ReadOrder(failed), failed)
	f.Save(failed, false) // a failure twice: no-op

	confirmed := f.Order(w.sale, w.alice, 1, "retried", domain.OrderConfirmed, f.Now)
	confirmed.ID = failed.ID
	f.Save(confirmed, false)
	CheckOrder(t, f.ReadOrder(failed), confirmed)
	f.Save(confirmed, false)
	f.Save(failed, false) // a stale failure after the confirmation
	CheckOrder(t, f.ReadOrder(failed), confirmed)
}

func testIdempotencyKeyTaken(t *testing.T, f *Fixture) {
	w := f.orders()
	first := f.Order(w.sale, w.bob, 1, "shared-key", domain.OrderConfirmed, f.Now)
	f.Save(first, true)
	second := f.Order(w.sale, w.bob, 2, "shared-key", domain.OrderConfirmed, f.Now.Add(time.Second))
	created, err := f.St.SaveOrder(f.Ctx, second)
	if !errors.Is(err, domain.ErrPermanent) || created {
		t.Fatalf("SaveOrder(key taken) = %v, %v, want ErrPermanent", created, err)
	}
	CheckOrder(t, f.ReadOrder(first), first)
	if _, err := f.St.Order(f.Ctx, w.tenant.ID, second.ID); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("refused order was stored: %v", err)
	}
	// The same key for another user is fine.
	f.Save(f.Order(w.sale, w.alice, 1, "shared-key", domain.OrderConfirmed, f.Now), true)
}

func testOrderPermanent(t *testing.T, f *Fixture) {
	w := f.orders()
	for name, mutate := range map[string]func(o *domain.Order){
		"unknown sale":   func(o *domain.Order) { o.SaleID = uuid.New() },
		"unknown user":   func(o *domain.Order) { o.UserID = uuid.New() },
		"unknown tenant": func(o *domain.Order) { o.TenantID = uuid.New() },
		"no quantity":    func(o *domain.Order) { o.Quantity = 0 },
		"pending status": func(o *domain.Order) { o.Status = domain.OrderPending },
	} {
		o := f.Order(w.sale, w.alice, 1, "perm-"+name, domain.OrderConfirmed, f.Now)
		mutate(&o)
		created, err := f.St.SaveOrder(f.Ctx, o)
		if !errors.Is(err, domain.ErrPermanent) || created {
			t.Errorf("%s: SaveOrder = %v, %v, want an error wrapping ErrPermanent", name, created, err)
		}
		if _, err := f.St.Order(f.Ctx, o.TenantID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
			t.Errorf("%s: the refused order was stored: %v", name, err)
		}
	}
}

func testOrderTenantScoped(t *testing.T, f *Fixture) {
	w := f.orders()
	o := f.Order(w.sale, w.alice, 1, "scoped", domain.OrderConfirmed, f.Now)
	f.Save(o, true)
	if _, err := f.St.Order(f.Ctx, f.Tenant("tenant-b").ID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("Order(other tenant) = %v, want ErrOrderNotFound", err)
	}
	if _, err := f.St.Order(f.Ctx, w.tenant.ID, uuid.New()); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("Order(unknown) = %v, want ErrOrderNotFound", err)
	}
}

func testListOrdersPagination(t *testing.T, f *Fixture) {
	w := f.orders()
	s2 := f.Sale(w.tenant.ID, "drop-2", -time.Hour, 2*time.Hour, 0)

	// 25 orders; every three share a created_at, so the id has to break the ties.
	var want []domain.Order
	for i := range 25 {
		sale, status := w.sale, domain.OrderConfirmed
		if i%4 == 0 {
			sale, status = s2, domain.OrderFailed
		}
		o := f.Order(sale, w.alice, 1, fmt.Sprintf("k%d", i), status, f.Now.Add(time.Duration(i/3)*time.Second))
		f.Save(o, true)
		want = append(want, o)
		// Bob's orders, at the same instants, never show up in Alice's pages.
		f.Save(f.Order(sale, w.bob, 1, fmt.Sprintf("k%d", i), status, o.CreatedAt), true)
	}
	slices.SortFunc(want, func(a, b domain.Order) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})

	for _, size := range []int{10, 3, 1, 25, 100} {
		var got []domain.Order
		var after *ports.OrderCursor
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatalf("page size %d: pagination does not end", size)
			}
			page, err := f.St.ListOrders(f.Ctx, w.tenant.ID, w.alice.ID, after, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > size {
				t.Fatalf("page of %d, limit %d", len(page), size)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			last := page[len(page)-1]
			after = &ports.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if len(got) != len(want) {
			t.Fatalf("page size %d: paged through %d orders, want %d", size, len(got), len(want))
		}
		for i := range want {
			CheckOrder(t, got[i], want[i])
		}
	}
	if page, err := f.St.ListOrders(f.Ctx, uuid.New(), w.alice.ID, nil, 100); err != nil || len(page) != 0 {
		t.Fatalf("other tenant's page = %d orders, %v", len(page), err)
	}
}

func testConfirmedOrderIDs(t *testing.T, f *Fixture) {
	w := f.orders()
	c1 := f.Order(w.sale, w.alice, 2, "c1", domain.OrderConfirmed, f.Now)
	c2 := f.Order(w.sale, w.alice, 3, "c2", domain.OrderConfirmed, f.Now)
	failed := f.Order(w.sale, w.alice, 4, "f1", domain.OrderFailed, f.Now)
	for _, o := range []domain.Order{c1, c2, failed} {
		f.Save(o, true)
	}
	got, err := f.St.ConfirmedOrderIDs(f.Ctx, w.tenant.ID, []uuid.UUID{c1.ID, failed.ID, uuid.New(), c2.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uuid.UUID]bool{c1.ID: true, c2.ID: true}; fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 2 {
		t.Fatalf("ConfirmedOrderIDs = %v, want %v", got, want)
	}
	if got, err := f.St.ConfirmedOrderIDs(f.Ctx, w.tenant.ID, nil); err != nil || len(got) != 0 {
		t.Fatalf("ConfirmedOrderIDs(nil) = %v, %v", got, err)
	}
	confirmed := failed
	confirmed.Status, confirmed.ConfirmedAt = domain.OrderConfirmed, &f.Now
	f.Save(confirmed, false)
	if got, err := f.St.ConfirmedOrderIDs(f.Ctx, w.tenant.ID, []uuid.UUID{failed.ID}); err != nil || !got[failed.ID] {
		t.Fatalf("ConfirmedOrderIDs after confirmation = %v, %v", got, err)
	}
	// Another tenant sees nothing of tenant A's orders.
	b := f.Tenant("tenant-b")
	if got, err := f.St.ConfirmedOrderIDs(f.Ctx, b.ID, []uuid.UUID{c1.ID, c2.ID}); err != nil || len(got) != 0 {
		t.Fatalf("ConfirmedOrderIDs from another tenant = %v, %v", got, err)
	}
}

// testSaleOrders: a sale's durable orders, confirmed and failed, oldest first, as they were
// saved; not another sale's or tenant's.
func testSaleOrders(t *testing.T, f *Fixture) {
	w := f.orders()
	other := f.Sale(w.tenant.ID, "other", -time.Hour, 2*time.Hour, 0)
	late := f.Order(w.sale, w.alice, 1, "late", domain.OrderConfirmed, f.Now)
	early := f.Order(w.sale, w.alice, 2, "early", domain.OrderConfirmed, f.Now.Add(-time.Minute))
	failed := f.Order(w.sale, w.alice, 3, "failed", domain.OrderFailed, f.Now.Add(time.Minute))
	for _, o := range []domain.Order{late, early, failed, f.Order(other, w.alice, 1, "elsewhere", domain.OrderConfirmed, f.Now)} {
		f.Save(o, true)
	}
	got, err := f.St.SaleOrders(f.Ctx, w.tenant.ID, w.sale.ID)
	if err != nil || len(got) != 3 || got[0].ID != early.ID || got[1].ID != late.ID || got[2].ID != failed.ID {
		t.Fatalf("SaleOrders = %+v, %v; want early, late, then the failed one", got, err)
	}
	if got[0].Quantity != 2 || got[0].UserID != w.alice.ID || got[0].IdempotencyKey != "early" ||
		got[0].Status != domain.OrderConfirmed || got[2].Status != domain.OrderFailed {
		t.Fatalf("orders = %+v, want them as saved", got)
	}
	if got, err := f.St.SaleOrders(f.Ctx, f.Tenant("tenant-b").ID, w.sale.ID); err != nil || len(got) != 0 {
		t.Fatalf("SaleOrders from another tenant = %v, %v", got, err)
	}
}

// testReservationHighWater: the sale's order with the highest reservation number, whatever its
// status or time; none for a sale without numbered orders; not another sale's or tenant's. A
// confirmation replacing a failure (a dead letter retried) carries its new number. In shards,
// the highest of each shard (number modulo shards), highest first.
func testReservationHighWater(t *testing.T, f *Fixture) {
	w := f.orders()
	high := func(tenantID uuid.UUID) ports.HighWater {
		t.Helper()
		got, err := f.St.ReservationHighWaters(f.Ctx, tenantID, w.sale.ID, 1)
		if err != nil {
			t.Fatalf("ReservationHighWaters: %v", err)
		}
		if len(got) > 1 {
			t.Fatalf("ReservationHighWaters in one shard = %+v, want one at most", got)
		}
		if len(got) == 0 {
			return ports.HighWater{}
		}
		return got[0]
	}
	if got := high(w.tenant.ID); got != (ports.HighWater{}) {
		t.Fatalf("ReservationHighWater of a sale without orders = %+v, want none", got)
	}
	numbered := func(o domain.Order, seq int64) domain.Order { o.ReservationSeq = seq; return o }
	unnumbered := f.Order(w.sale, w.bob, 1, "baseline", domain.OrderConfirmed, f.Now)
	f.Save(unnumbered, true)
	if got := high(w.tenant.ID); got != (ports.HighWater{}) {
		t.Fatalf("ReservationHighWater with unnumbered orders only = %+v, want none", got)
	}
	top := numbered(f.Order(w.sale, w.alice, 1, "top", domain.OrderFailed, f.Now.Add(-time.Minute)), 7)
	other := f.Sale(w.tenant.ID, "other", -time.Hour, 2*time.Hour, 0)
	for _, o := range []domain.Order{
		numbered(f.Order(w.sale, w.alice, 1, "low", domain.OrderConfirmed, f.Now), 3), top,
		numbered(f.Order(other, w.alice, 1, "elsewhere", domain.OrderConfirmed, f.Now), 99),
	} {
		f.Save(o, true)
	}
	if got := high(w.tenant.ID); got != (ports.HighWater{Seq: 7, OrderID: top.ID}) {
		t.Fatalf("ReservationHighWater = %+v, want 7, order %s", got, top.ID)
	}
	retried := numbered(top, 12)
	retried.Status, retried.ConfirmedAt = domain.OrderConfirmed, &f.Now
	f.Save(retried, false)
	if got := high(w.tenant.ID); got != (ports.HighWater{Seq: 12, OrderID: top.ID}) {
		t.Fatalf("ReservationHighWater after a retried dead letter = %+v, want 12, order %s", got, top.ID)
	}
	if got := high(f.Tenant("tenant-b").ID); got != (ports.HighWater{}) {
		t.Fatalf("ReservationHighWater from another tenant = %+v, want none", got)
	}
	low := numbered(f.Order(w.sale, w.bob, 1, "shard-3", domain.OrderConfirmed, f.Now), 3+4)
	f.Save(low, true)
	got, err := f.St.ReservationHighWaters(f.Ctx, w.tenant.ID, w.sale.ID, 4)
	want := []ports.HighWater{{Seq: 12, OrderID: top.ID}, {Seq: 7, OrderID: low.ID}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ReservationHighWaters in 4 shards = %+v, %v; want %+v (shard 0, then shard 3)", got, err, want)
	}
}
