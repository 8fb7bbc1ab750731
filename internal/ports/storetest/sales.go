package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

var saleCases = []testCase{
	{"CreateAndRead", testSaleCreateAndRead},
	{"ListSales", testListSales},
	{"UpdateSaleStoresWhatTheUpdateReturns", testUpdateSaleStores},
	{"UpdateSaleErrorRollsBack", testUpdateSaleRollsBack},
	{"UpdateSaleOfAnotherTenantIsNotFound", testUpdateSaleOtherTenant},
	{"UpdateSaleSerialisedByTheRowLock", testUpdateSaleSerialised},
	{"LiveSalesAndCloseSales", testLiveSalesAndCloseSales},
	{"SoldUnitsCountsConfirmedOrders", testSoldUnits},
}

func testSaleCreateAndRead(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	s := f.Sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)

	got, err := f.St.Sale(f.Ctx, a.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Fatalf("Sale = %+v, want %+v", got, s)
	}
	for name, id := range map[string]struct{ tenant, sale uuid.UUID }{
		"other tenant": {b.ID, s.ID},
		"unknown sale": {a.ID, uuid.New()},
	} {
		if got, err := f.St.Sale(f.Ctx, id.tenant, id.sale); !errors.Is(err, domain.ErrSaleNotFound) {
			t.Errorf("%s: Sale = %+v, %v, want ErrSaleNotFound", name, got, err)
		}
	}
	bad := s
	bad.ID, bad.TotalStock = uuid.New(), 0
	if err := f.St.CreateSale(f.Ctx, bad); err == nil {
		t.Fatalf("CreateSale accepted a sale without stock")
	}
	dup := s
	dup.Name = "again"
	if err := f.St.CreateSale(f.Ctx, dup); err == nil {
		t.Fatalf("CreateSale accepted an existing id")
	}
	if got, err := f.St.Sale(f.Ctx, a.ID, s.ID); err != nil || got != s {
		t.Fatalf("after the refusals Sale = %+v, %v, want %+v", got, err, s)
	}
}

func testListSales(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	h := time.Hour
	running := f.Sale(a.ID, "running", -h, 2*h, 0)
	upcoming := f.Sale(a.ID, "upcoming", h, h, time.Second)
	later := f.Sale(a.ID, "later", 3*h, h, 2*time.Second)
	endedRecent := f.Sale(a.ID, "ended-recent", -3*h, 2*h, 3*time.Second)
	endedOld := f.Sale(a.ID, "ended-old", -5*h, h, 4*time.Second)
	f.Sale(b.ID, "b-running", -h, 2*h, 5*time.Second)
	f.Sale(b.ID, "b-ended", -3*h, h, 6*time.Second)

	cases := []struct {
		name   string
		tenant uuid.UUID
		filter ports.SaleFilter
		want   []domain.Sale
	}{
		{"active, latest start first", a.ID, ports.SaleFilter{Limit: 10}, []domain.Sale{later, upcoming, running}},
		{"active, limited", a.ID, ports.SaleFilter{Limit: 2}, []domain.Sale{later, upcoming}},
		{"ended, latest end first", a.ID, ports.SaleFilter{EndedOnly: true, Limit: 10}, []domain.Sale{endedRecent, endedOld}},
		{"ended, limited", a.ID, ports.SaleFilter{EndedOnly: true, Limit: 1}, []domain.Sale{endedRecent}},
		{"any, newest first", a.ID, ports.SaleFilter{Any: true, Limit: 10}, []domain.Sale{endedOld, endedRecent, later, upcoming, running}},
		{"any, limited", a.ID, ports.SaleFilter{Any: true, Limit: 3}, []domain.Sale{endedOld, endedRecent, later}},
		{"unknown tenant", uuid.New(), ports.SaleFilter{Any: true, Limit: 10}, nil},
	}
	for _, tc := range cases {
		got, err := f.St.ListSales(f.Ctx, tc.tenant, tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListSales = %v, want %v", tc.name, names(got), names(tc.want))
		}
	}
	active, err := f.St.ListSales(f.Ctx, b.ID, ports.SaleFilter{Limit: 10})
	if err != nil || fmt.Sprint(names(active)) != "[b-running]" {
		t.Fatalf("tenant b active = %v, %v", names(active), err)
	}
	ended, err := f.St.ListSales(f.Ctx, b.ID, ports.SaleFilter{EndedOnly: true, Limit: 10})
	if err != nil || fmt.Sprint(names(ended)) != "[b-ended]" {
		t.Fatalf("tenant b ended = %v, %v", names(ended), err)
	}
}

func testUpdateSaleStores(t *testing.T, f *Fixture) {
	a := f.Tenant("tenant-a")
	s := f.Sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
	var seen domain.Sale
	saved, err := f.St.UpdateSale(f.Ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		seen = cur
		cur.Name, cur.PriceCents, cur.Currency, cur.TotalStock, cur.PerUserLimit = "renamed", 2500, "USD", 250, 5
		cur.EndsAt = cur.EndsAt.Add(time.Hour)
		cur.UpdatedAt = f.Now.Add(time.Minute)
		cur.WaitingRoom = domain.WaitingRoom{Enabled: true, AdmitPerSecond: 50, AdmissionTTL: 2 * time.Minute, AutoRate: true}
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != s {
		t.Fatalf("update saw %+v, want %+v", seen, s)
	}
	want := s
	want.Name, want.PriceCents, want.Currency, want.TotalStock, want.PerUserLimit = "renamed", 2500, "USD", 250, 5
	want.EndsAt, want.UpdatedAt = s.EndsAt.Add(time.Hour), f.Now.Add(time.Minute)
	want.WaitingRoom = domain.WaitingRoom{Enabled: true, AdmitPerSecond: 50, AdmissionTTL: 2 * time.Minute, AutoRate: true}
	if saved != want {
		t.Fatalf("UpdateSale = %+v, want %+v", saved, want)
	}
	if got, err := f.St.Sale(f.Ctx, a.ID, s.ID); err != nil || got != want {
		t.Fatalf("stored = %+v, %v, want %+v", got, err, want)
	}
}

func testUpdateSaleRollsBack(t *testing.T, f *Fixture) {
	a := f.Tenant("tenant-a")
	s := f.Sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
	boom := errors.New("boom")
	_, err := f.St.UpdateSale(f.Ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		cur.Name, cur.TotalStock = "changed", 1
		return cur, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateSale = %v, want the update's error", err)
	}
	if got, err := f.St.Sale(f.Ctx, a.ID, s.ID); err != nil || got != s {
		t.Fatalf("after a failed update = %+v, %v, want unchanged %+v", got, err, s)
	}
	// A value the store refuses fails the update and changes nothing either.
	_, err = f.St.UpdateSale(f.Ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		cur.Name, cur.TotalStock = "changed", 0
		return cur, nil
	})
	if err == nil {
		t.Fatalf("UpdateSale stored a sale without stock")
	}
	if got, err := f.St.Sale(f.Ctx, a.ID, s.ID); err != nil || got != s {
		t.Fatalf("after a refused update = %+v, %v, want unchanged %+v", got, err, s)
	}
}

func testUpdateSaleOtherTenant(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	s := f.Sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
	called := false
	_, err := f.St.UpdateSale(f.Ctx, b.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		called = true
		return cur, nil
	})
	if !errors.Is(err, domain.ErrSaleNotFound) || called {
		t.Fatalf("UpdateSale(other tenant) = %v, update called %v; want ErrSaleNotFound, not called", err, called)
	}
}

// While one update runs, another waits for it.
func testUpdateSaleSerialised(t *testing.T, f *Fixture) {
	a := f.Tenant("tenant-a")
	s := f.Sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
	const n = 25
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := f.St.UpdateSale(f.Ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
				cur.TotalStock++
				return cur, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := f.St.Sale(f.Ctx, a.ID, s.ID)
	if err != nil || got.TotalStock != s.TotalStock+n {
		t.Fatalf("stock after %d concurrent +1 = %d, %v, want %d", n, got.TotalStock, err, s.TotalStock+n)
	}
}

func testLiveSalesAndCloseSales(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	h := time.Hour
	now := f.Now

	open := f.Sale(a.ID, "open", -h, 2*h, 0)
	upcoming := f.Sale(a.ID, "upcoming", h, h, 0)
	openB := f.Sale(b.ID, "open-b", -h, 2*h, 0)
	closedRecent := f.Sale(a.ID, "closed-recent", -2*h, 90*time.Minute, 0) // ended 30 min ago
	closedOld := f.Sale(a.ID, "closed-old", -73*h, h, 0)                   // ended 3 days ago
	closedOldB := f.Sale(b.ID, "closed-old-b", -73*h, h, 0)

	closeSales := func(cutoff time.Time, want int64) {
		t.Helper()
		n, err := f.St.CloseSales(f.Ctx, cutoff)
		if err != nil || n != want {
			t.Fatalf("CloseSales(%v) = %d, %v, want %d", cutoff.Sub(now), n, err, want)
		}
	}
	live := func(since time.Time, want ...domain.Sale) {
		t.Helper()
		refs, err := f.St.LiveSales(f.Ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]uuid.UUID, len(refs))
		for i, r := range refs {
			got[i] = r.SaleID
			tenant := map[uuid.UUID]uuid.UUID{openB.ID: b.ID, closedOldB.ID: b.ID}[r.SaleID]
			if tenant == uuid.Nil {
				tenant = a.ID
			}
			if r.TenantID != tenant {
				t.Errorf("LiveSales: sale %s with tenant %s, want %s", r.SaleID, r.TenantID, tenant)
			}
		}
		if !sameIDs(got, saleIDs(want)) {
			t.Fatalf("LiveSales(since %v) = %v, want %v", since.Sub(now), got, names(want))
		}
	}
	tenantLive := func(tenant uuid.UUID, since time.Time, want ...domain.Sale) {
		t.Helper()
		got, err := f.St.TenantLiveSaleIDs(f.Ctx, tenant, since)
		if err != nil {
			t.Fatal(err)
		}
		if !sameIDs(got, saleIDs(want)) {
			t.Fatalf("TenantLiveSaleIDs(since %v) = %v, want %v", since.Sub(now), got, names(want))
		}
	}

	// Not closed yet: live whatever since says, even long ended.
	live(now, open, upcoming, openB, closedRecent, closedOld, closedOldB)
	// The three ended sales are closed; open and upcoming ones are not, and closing is idempotent.
	closeSales(now, 3)
	closeSales(now, 0)

	// Ended but not closed yet, so still live whatever since says.
	endedOpen := f.Sale(a.ID, "ended-open", -3*h, h, 0) // ended 2h ago
	endedJust := f.Sale(a.ID, "ended-just", -h, 50*time.Minute, 0)

	live(now.Add(-24*h), open, upcoming, openB, closedRecent, endedOpen, endedJust)
	live(now.Add(-20*time.Minute), open, upcoming, openB, endedOpen, endedJust)
	tenantLive(a.ID, now.Add(-24*h), open, upcoming, closedRecent, endedOpen, endedJust)
	tenantLive(a.ID, now.Add(-20*time.Minute), open, upcoming, endedOpen, endedJust)
	tenantLive(b.ID, now.Add(-24*h), openB)
	tenantLive(b.ID, now.Add(-100*h), openB, closedOldB)
	tenantLive(uuid.New(), now.Add(-100*h))

	// Only sales ended before the cutoff are closed.
	closeSales(now.Add(-h), 1) // ended-open
	live(now.Add(-20*time.Minute), open, upcoming, openB, endedJust)
	closeSales(now, 1) // ended-just
	// Closed, but ended (10 min ago) after since: it may still hold reservations.
	live(now.Add(-20*time.Minute), open, upcoming, openB, endedJust)
	live(now.Add(-5*time.Minute), open, upcoming, openB)
	live(now.Add(-100*h), open, upcoming, openB, closedRecent, closedOld, closedOldB, endedOpen, endedJust)

	// Closing never hides an unfinished sale from the active list, and extending a closed sale
	// reopens it.
	active, err := f.St.ListSales(f.Ctx, a.ID, ports.SaleFilter{Limit: 10})
	if err != nil || !sameIDs(saleIDs(active), []uuid.UUID{open.ID, upcoming.ID}) {
		t.Fatalf("active = %v, %v", names(active), err)
	}
	if _, err := f.St.UpdateSale(f.Ctx, a.ID, closedOld.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		cur.EndsAt = now.Add(h)
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	active, err = f.St.ListSales(f.Ctx, a.ID, ports.SaleFilter{Limit: 10})
	if err != nil || !sameIDs(saleIDs(active), []uuid.UUID{open.ID, upcoming.ID, closedOld.ID}) {
		t.Fatalf("active after reopening = %v, %v", names(active), err)
	}
	live(now.Add(-5*time.Minute), open, upcoming, openB, closedOld)
	// Changing an ended sale without extending it leaves it closed.
	if _, err := f.St.UpdateSale(f.Ctx, a.ID, closedRecent.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		cur.Name = "renamed"
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	live(now.Add(-5*time.Minute), open, upcoming, openB, closedOld)
}

// SoldUnits counts the units of the sale's confirmed orders, in the tenant.
func testSoldUnits(t *testing.T, f *Fixture) {
	a := f.Tenant("tenant-a")
	s1 := f.Sale(a.ID, "one", -time.Hour, 2*time.Hour, 0)
	s2 := f.Sale(a.ID, "two", -time.Hour, 2*time.Hour, 0)
	alice := f.User(a.ID, "alice@example.com")
	failed := f.Order(s1, alice, 4, "f1", domain.OrderFailed, f.Now)
	for _, o := range []domain.Order{
		f.Order(s1, alice, 2, "c1", domain.OrderConfirmed, f.Now),
		f.Order(s1, alice, 3, "c2", domain.OrderConfirmed, f.Now),
		failed,
		f.Order(s2, alice, 5, "c3", domain.OrderConfirmed, f.Now),
	} {
		f.Save(o, true)
	}
	sold := func(tenantID, saleID uuid.UUID, want int) {
		t.Helper()
		if n, err := f.St.SoldUnits(f.Ctx, tenantID, saleID); err != nil || n != want {
			t.Fatalf("SoldUnits(%s) = %d, %v, want %d", saleID, n, err, want)
		}
	}
	sold(a.ID, s1.ID, 5) // failed orders do not count
	sold(a.ID, s2.ID, 5)
	sold(a.ID, uuid.New(), 0)
	// The failed order confirmed after all counts from then on.
	confirmed := failed
	confirmed.Status, confirmed.ConfirmedAt = domain.OrderConfirmed, &f.Now
	f.Save(confirmed, false)
	sold(a.ID, s1.ID, 9)
	// Another tenant sees nothing of tenant A's orders.
	sold(f.Tenant("tenant-b").ID, s1.ID, 0)
}
