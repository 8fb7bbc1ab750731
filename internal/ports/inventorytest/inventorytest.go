// Package inventorytest is the contract of ports.InventoryStore: one suite of behavioural
// checks that every implementation must pass, run by each adapter's tests against a real
// backend (the Redis adapter, the design, and the PostgreSQL row-locking baseline). It uses the
// store only through the port, so what it checks is what the rest of the system may rely on.
//
// The rules are those of the Lua scripts in lua/: the sale window, idempotency per (user, key)
// within a sale answering with the same reservation as a duplicate, the per-user limit, the
// stock check-and-take, the reservation record (price, currency, time, status), the awaited
// reservations and the pending count, the release / rereserve / confirm state machine, and
// SyncSale keeping the units sold (soldHint only seeding a new inventory).
package inventorytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Options adapt the suite to a store.
type Options struct {
	// Racers is how many reservations race for 100 units in the concurrency case (default
	// 2,000; at least 300, so that the buyers can empty the stock within their limits). A store
	// that holds a connection per call, like PostgreSQL, wants a moderate number.
	Racers int
	// Unnumbered: the store gives its reservations no number (Seq 0) because it cannot roll back
	// apart from the orders (the PostgreSQL baseline); the rebuild of a rolled-back inventory
	// is not checked.
	Unnumbered bool
	// Shards splits every sale of the suite into that many stock shards (domain.Sale.Shards;
	// 0: one), for a store that shards sales. The contract is the same.
	Shards int
}

// Run runs the contract against the stores newStore returns, one call per test. The cases run
// in parallel, each with its own tenant and sales (random ids), so the stores may share one
// backend.
func Run(t *testing.T, newStore func(t *testing.T) ports.InventoryStore, o Options) {
	if o.Racers == 0 {
		o.Racers = 2000
	}
	if o.Racers < 300 {
		t.Fatalf("inventorytest: Racers = %d, want at least 300", o.Racers)
	}
	cases := []struct {
		name string
		run  func(t *testing.T, newFixture func(t *testing.T) *fixture)
	}{
		{"SyncSaleCreatesInventory", testSyncSaleCreatesInventory},
		{"ReserveOutcomes", testReserveOutcomes},
		{"ReserveDuplicateReturnsTheSameOrder", testReserveDuplicate},
		{"ReservationRecords", testReservationRecords},
		{"AwaitedReservationsAndMarkConfirmed", testAwaitedAndMarkConfirmed},
		{"ReleaseGivesStockAndAllowanceBackOnce", testReleaseOnce},
		{"ConcurrentReleaseReleasesOnce", testConcurrentRelease},
		{"ConcurrentConfirmAndRelease", testConcurrentConfirmAndRelease},
		{"Rereserve", testRereserve},
		{"ConcurrentRereserveTakesOnce", testConcurrentRereserve},
		{"Adopt", testAdopt},
		{"ReservationRecordsItsNode", testReservationNode},
		{"Fence", testFence},
		{"RestoreSale", testRestoreSale},
		{"RestoreSaleRebuildsAnInventoryBehindTheOrders", func(t *testing.T, nf func(t *testing.T) *fixture) {
			if o.Unnumbered {
				t.Skip("the store's reservations carry no number: it cannot roll back apart from the orders")
			}
			testRestoreBehind(t, nf)
		}},
		{"SyncSaleOnALiveSale", testSyncSaleOnALiveSale},
		{"SyncSaleSoldHint", testSyncSaleSoldHint},
		{"ConcurrentSyncSaleCreatesOnce", testConcurrentSyncSale},
		{"ConcurrentReserveNeverOversells", func(t *testing.T, nf func(t *testing.T) *fixture) {
			testConcurrentReserve(t, nf, o.Racers)
		}},
	}
	newFixture := func(t *testing.T) *fixture {
		t.Helper()
		return &fixture{t: t, ctx: context.Background(), inv: newStore(t), tenant: uuid.New(), shards: o.Shards}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newFixture)
		})
	}
}

// fixture is one test's store and tenant.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	inv    ports.InventoryStore
	tenant uuid.UUID
	shards int
}

// newSale describes a sale of the fixture's tenant; it is not synced.
func (f *fixture) newSale(total, limit int, startsIn, lasts time.Duration) domain.Sale {
	start := time.Now().Add(startsIn).UTC().Truncate(time.Millisecond)
	return domain.Sale{
		ID: uuid.New(), TenantID: f.tenant, Name: "sale", PriceCents: 1999, Currency: "EUR",
		TotalStock: total, PerUserLimit: limit, StartsAt: start, EndsAt: start.Add(lasts), Shards: f.shards,
	}
}

// liveSale is a sale that started a minute ago and lasts an hour, synced.
func (f *fixture) liveSale(total, limit int) domain.Sale {
	f.t.Helper()
	s := f.newSale(total, limit, -time.Minute, time.Hour)
	f.sync(s, 0)
	return s
}

func (f *fixture) sync(s domain.Sale, soldHint int) domain.Inventory {
	f.t.Helper()
	inv, err := f.inv.SyncSale(f.ctx, s, soldHint)
	if err != nil {
		f.t.Fatalf("SyncSale: %v", err)
	}
	return inv
}

func (f *fixture) reservation(s domain.Sale, user uuid.UUID, qty int, key string) domain.Reservation {
	return domain.Reservation{
		OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: user, Quantity: qty, IdempotencyKey: key,
	}
}

// reserve reserves and fails the test unless the reservation is accepted as new.
func (f *fixture) reserve(s domain.Sale, user uuid.UUID, qty int, key string) domain.Reservation {
	f.t.Helper()
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, user, qty, key))
	if err != nil {
		f.t.Fatalf("Reserve(user %s, qty %d, key %q): %v", user, qty, key, err)
	}
	if res.Duplicate {
		f.t.Fatalf("Reserve(user %s, key %q): unexpected duplicate", user, key)
	}
	return res.Reservation
}

// remainingIs checks the units left a reservation reports (ports.ReserveResult.Remaining): in
// a sharded sale a lower bound, exact when 0, and 0 only when nothing is left.
func (f *fixture) remainingIs(got, want int) bool {
	if f.shards > 1 {
		return (got == 0) == (want == 0) && got <= want
	}
	return got == want
}

// inventory reads the live inventory of s, which must exist.
func (f *fixture) inventory(s domain.Sale) domain.Inventory {
	f.t.Helper()
	inv, ok, err := f.inv.Inventory(f.ctx, s.TenantID, s.ID)
	if err != nil || !ok {
		f.t.Fatalf("Inventory: ok=%v err=%v", ok, err)
	}
	return inv
}

// stock checks the live inventory of s.
func (f *fixture) stock(s domain.Sale, total, remaining, sold int) {
	f.t.Helper()
	inv := f.inventory(s)
	// Pending units are always those of the reservations still awaited.
	awaited, err := f.inv.AwaitedReservations(f.ctx, s.TenantID, s.ID, time.Now().Add(time.Hour), 0)
	if err != nil {
		f.t.Fatalf("AwaitedReservations: %v", err)
	}
	pending := 0
	for _, r := range awaited {
		pending += r.Quantity
	}
	want := domain.Inventory{SaleID: s.ID, TenantID: s.TenantID, Total: total, Remaining: remaining, Sold: sold, Pending: pending,
		Seq: inv.Seq, Shards: inv.Shards}
	if max(inv.Shards, 1) != max(s.Shards, 1) {
		f.t.Fatalf("inventory in %d shards, want %d", inv.Shards, max(s.Shards, 1))
	}
	if inv != want {
		f.t.Fatalf("inventory = %+v, want %+v", inv, want)
	}
}

// awaited lists the ids of every awaited reservation of s.
func (f *fixture) awaited(s domain.Sale) []uuid.UUID {
	f.t.Helper()
	rs, err := f.inv.AwaitedReservations(f.ctx, s.TenantID, s.ID, time.Now().Add(time.Hour), 0)
	if err != nil {
		f.t.Fatalf("AwaitedReservations: %v", err)
	}
	ids := make([]uuid.UUID, len(rs))
	for i, r := range rs {
		if r.Status != domain.OrderPending {
			f.t.Errorf("awaited reservation %s has status %q, want pending", r.OrderID, r.Status)
		}
		ids[i] = r.OrderID
	}
	return ids
}

func (f *fixture) release(r domain.Reservation) {
	f.t.Helper()
	released, err := f.inv.Release(f.ctx, r)
	if err != nil || !released {
		f.t.Fatalf("Release(%s) = %v, %v, want released", r.OrderID, released, err)
	}
}

func (f *fixture) status(s domain.Sale, orderID uuid.UUID) domain.OrderStatus {
	f.t.Helper()
	r, ok, err := f.inv.Reservation(f.ctx, s.TenantID, s.ID, orderID)
	if err != nil || !ok {
		f.t.Fatalf("Reservation(%s): ok=%v err=%v", orderID, ok, err)
	}
	return r.Status
}

// bought is the number of units the store counts against user's limit in s.
func (f *fixture) bought(s domain.Sale, user uuid.UUID) int {
	f.t.Helper()
	return f.boughtBy(s, user)[0]
}

// boughtBy reads the per-user counters through the port alone: with the window open and a unit
// left, a request for more than the limit is refused with the allowance left (limit - bought)
// in its detail, and takes nothing. s, the sale as last synced, is synced back afterwards.
func (f *fixture) boughtBy(s domain.Sale, users ...uuid.UUID) []int {
	f.t.Helper()
	probe := s
	probe.StartsAt, probe.EndsAt = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	probe.TotalStock = f.inventory(s).Sold + 1
	f.sync(probe, 0)
	out := make([]int, len(users))
	for i, u := range users {
		_, err := f.inv.Reserve(f.ctx, f.reservation(s, u, s.PerUserLimit+1, "probe-"+uuid.NewString()))
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.ErrPurchaseLimitExceeded.Code {
			f.t.Fatalf("probe of user %s's allowance: %v, want %v", u, err, domain.ErrPurchaseLimitExceeded)
		}
		var qty, allowed int
		if _, err := fmt.Sscanf(de.Detail, "%d more would exceed the per-user limit: %d more allowed", &qty, &allowed); err != nil {
			f.t.Fatalf("probe of user %s's allowance: detail %q: %v", u, de.Detail, err)
		}
		out[i] = s.PerUserLimit - allowed
	}
	f.sync(s, 0)
	return out
}

func sameIDs(got, want []uuid.UUID) bool {
	less := func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }
	g, w := slices.SortedFunc(slices.Values(got), less), slices.SortedFunc(slices.Values(want), less)
	return slices.Equal(g, w)
}

// wantDomainErr checks err is want: same code and, since ErrSaleNotStarted and ErrSaleEnded
// share one code, the same detail when want has one.
func wantDomainErr(t *testing.T, err error, want *domain.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("err = %v is not a *domain.Error", err)
	}
	if want.Detail != "" && de.Detail != want.Detail {
		t.Fatalf("err detail = %q, want %q", de.Detail, want.Detail)
	}
}

// race runs fn n times at once and waits for them all.
func race(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testSyncSaleCreatesInventory(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.newSale(50, 3, -time.Minute, time.Hour)

	if _, ok, err := f.inv.Inventory(f.ctx, s.TenantID, s.ID); err != nil || ok {
		t.Fatalf("before SyncSale: ok=%v err=%v, want unknown sale", ok, err)
	}
	got := f.sync(s, 0)
	want := domain.Inventory{SaleID: s.ID, TenantID: s.TenantID, Total: 50, Remaining: 50, Sold: 0}
	if got != want {
		t.Fatalf("SyncSale = %+v, want %+v", got, want)
	}
	f.stock(s, 50, 50, 0)
	if got := f.bought(s, uuid.New()); got != 0 {
		t.Fatalf("a new buyer has bought %d, want 0", got)
	}

	// Inventories reads several sales at once and leaves out the unknown ones.
	other := f.liveSale(7, 1)
	unknown := uuid.New()
	invs, err := f.inv.Inventories(f.ctx, f.tenant, []uuid.UUID{s.ID, unknown, other.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 2 || invs[s.ID].Remaining != 50 || invs[other.ID].Total != 7 || invs[other.ID].Remaining != 7 {
		t.Fatalf("Inventories = %+v", invs)
	}
	if _, ok := invs[unknown]; ok {
		t.Fatalf("Inventories lists an unknown sale")
	}
	if invs, err := f.inv.Inventories(f.ctx, f.tenant, nil); err != nil || len(invs) != 0 {
		t.Fatalf("Inventories(no sales) = %v, %v, want none", invs, err)
	}
	// Another tenant does not see the sale.
	if _, ok, err := f.inv.Inventory(f.ctx, uuid.New(), s.ID); err != nil || ok {
		t.Fatalf("other tenant: ok=%v err=%v, want unknown", ok, err)
	}
	if invs, err := f.inv.Inventories(f.ctx, uuid.New(), []uuid.UUID{s.ID}); err != nil || len(invs) != 0 {
		t.Fatalf("Inventories of another tenant = %v, %v, want none", invs, err)
	}
}

// priorBuy is a purchase accepted before the one under test.
type priorBuy struct{ user, qty int }

func boughtBy(user int, prior []priorBuy) int {
	n := 0
	for _, p := range prior {
		if p.user == user {
			n += p.qty
		}
	}
	return n
}

func testReserveOutcomes(t *testing.T, newFixture func(t *testing.T) *fixture) {
	type prior = priorBuy
	cases := []struct {
		name          string
		total, limit  int
		startsIn      time.Duration
		lasts         time.Duration
		noSync        bool
		prior         []prior // accepted first, each with its own key
		user, qty     int
		wantErr       *domain.Error
		wantDetail    string // exact detail of the refusal, when it carries numbers
		wantRemaining int
	}{
		{name: "ok", total: 10, limit: 5, user: 0, qty: 3, wantRemaining: 7},
		{name: "ok up to the limit exactly", total: 10, limit: 3, prior: []prior{{0, 1}, {0, 1}}, user: 0, qty: 1, wantRemaining: 7},
		{name: "ok takes the last units", total: 4, limit: 5, prior: []prior{{1, 2}}, user: 0, qty: 2, wantRemaining: 0},
		{name: "not started", total: 10, limit: 5, startsIn: time.Hour, user: 0, qty: 1,
			wantErr: domain.ErrSaleNotStarted, wantRemaining: 10},
		{name: "ended", total: 10, limit: 5, startsIn: -2 * time.Hour, lasts: time.Hour, user: 0, qty: 1,
			wantErr: domain.ErrSaleEnded, wantRemaining: 10},
		{name: "window checked before stock", total: 3, limit: 3, prior: []prior{{1, 3}}, startsIn: -2 * time.Hour, lasts: time.Hour,
			user: 0, qty: 1, wantErr: domain.ErrSaleEnded, wantRemaining: 0},
		{name: "limit across several orders", total: 10, limit: 3, prior: []prior{{0, 2}, {0, 1}}, user: 0, qty: 1,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "1 more would exceed the per-user limit: 0 more allowed", wantRemaining: 7},
		{name: "limit partly used", total: 10, limit: 3, prior: []prior{{0, 2}}, user: 0, qty: 2,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "2 more would exceed the per-user limit: 1 more allowed", wantRemaining: 8},
		{name: "limit in one order", total: 10, limit: 3, user: 0, qty: 4,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "4 more would exceed the per-user limit: 3 more allowed", wantRemaining: 10},
		{name: "limit checked before stock", total: 10, limit: 3, prior: []prior{{1, 3}, {2, 3}, {0, 2}}, user: 0, qty: 3,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "3 more would exceed the per-user limit: 1 more allowed", wantRemaining: 2},
		{name: "other users do not count", total: 10, limit: 2, prior: []prior{{1, 2}, {2, 2}}, user: 0, qty: 2, wantRemaining: 4},
		{name: "sold out", total: 3, limit: 3, prior: []prior{{1, 3}}, user: 0, qty: 1,
			wantErr: domain.ErrSoldOut, wantDetail: "the sale has no stock left", wantRemaining: 0},
		{name: "sold out before the limit", total: 3, limit: 3, prior: []prior{{0, 3}}, user: 0, qty: 1,
			wantErr: domain.ErrSoldOut, wantRemaining: 0},
		{name: "insufficient stock", total: 3, limit: 3, prior: []prior{{1, 2}}, user: 0, qty: 2,
			wantErr: domain.ErrInsufficientStock, wantDetail: "2 requested, 1 left", wantRemaining: 1},
		{name: "unknown sale", total: 10, limit: 5, noSync: true, user: 0, qty: 1, wantErr: domain.ErrSaleNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if tc.lasts == 0 {
				tc.lasts = time.Hour
			}
			if tc.startsIn == 0 {
				tc.startsIn = -time.Minute
			}
			s := f.newSale(tc.total, tc.limit, tc.startsIn, tc.lasts)
			users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
			var priorIDs []uuid.UUID
			if !tc.noSync {
				// Prior purchases happen while the sale is open; the window is applied after.
				open := s
				open.StartsAt, open.EndsAt = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
				f.sync(open, 0)
				for i, p := range tc.prior {
					priorIDs = append(priorIDs, f.reserve(open, users[p.user], p.qty, fmt.Sprintf("prior-%d", i)).OrderID)
				}
				f.sync(s, 0)
			}
			sold := 0
			for _, p := range tc.prior {
				sold += p.qty
			}

			r := f.reservation(s, users[tc.user], tc.qty, "the-key")
			res, err := f.inv.Reserve(f.ctx, r)

			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Reserve: %v", err)
				}
				got := res.Reservation
				if res.Duplicate || got.OrderID != r.OrderID || got.UserID != r.UserID || got.Quantity != tc.qty ||
					got.IdempotencyKey != "the-key" || got.Status != domain.OrderPending || !f.remainingIs(res.Remaining, tc.wantRemaining) {
					t.Fatalf("Reserve = %+v, want order %s qty %d pending, remaining %d", res, r.OrderID, tc.qty, tc.wantRemaining)
				}
				f.stock(s, tc.total, tc.wantRemaining, sold+tc.qty)
				if !sameIDs(f.awaited(s), append(priorIDs, r.OrderID)) {
					t.Fatalf("awaited = %v, want prior %v and %s", f.awaited(s), priorIDs, r.OrderID)
				}
				if got, want := f.bought(s, users[tc.user]), boughtBy(tc.user, tc.prior)+tc.qty; got != want {
					t.Fatalf("user bought %d, want %d", got, want)
				}
				return
			}
			wantDomainErr(t, err, tc.wantErr)
			if tc.wantDetail != "" {
				var de *domain.Error
				errors.As(err, &de)
				if de.Detail != tc.wantDetail {
					t.Fatalf("detail = %q, want %q", de.Detail, tc.wantDetail)
				}
			}
			if (res != ports.ReserveResult{}) {
				t.Fatalf("refused Reserve returned %+v", res)
			}
			// A refusal takes nothing and records nothing.
			if _, ok, err := f.inv.Reservation(f.ctx, s.TenantID, s.ID, r.OrderID); err != nil || ok {
				t.Fatalf("refused reservation recorded: ok=%v err=%v", ok, err)
			}
			if tc.noSync {
				if _, ok, _ := f.inv.Inventory(f.ctx, s.TenantID, s.ID); ok {
					t.Fatalf("Reserve on an unknown sale created its inventory")
				}
				return
			}
			f.stock(s, tc.total, tc.wantRemaining, sold)
			if !sameIDs(f.awaited(s), priorIDs) {
				t.Fatalf("awaited = %v, want %v", f.awaited(s), priorIDs)
			}
			// The refused key is still free: the same request, once it can succeed, is new.
			if got, want := f.bought(s, users[tc.user]), boughtBy(tc.user, tc.prior); got != want {
				t.Fatalf("user bought %d, want %d", got, want)
			}
		})
	}
}

func testReserveDuplicate(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 4)
	alice, bob := uuid.New(), uuid.New()

	first := f.reserve(s, alice, 2, "k1")
	f.stock(s, 10, 8, 2)

	// The same user and key again, as a retried request with a fresh order id: same order back.
	for range 3 {
		again := f.reservation(s, alice, 2, "k1")
		res, err := f.inv.Reserve(f.ctx, again)
		if err != nil {
			t.Fatalf("duplicate Reserve: %v", err)
		}
		if !res.Duplicate || res.Reservation != first || !f.remainingIs(res.Remaining, 8) {
			t.Fatalf("duplicate Reserve = %+v, want duplicate of %+v with 8 remaining", res, first)
		}
		if _, ok, err := f.inv.Reservation(f.ctx, s.TenantID, s.ID, again.OrderID); err != nil || ok {
			t.Fatalf("the duplicate's own order id was recorded: ok=%v err=%v", ok, err)
		}
	}
	// Even with another quantity the key stays bound to the first order.
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, alice, 1, "k1"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != first.OrderID || res.Reservation.Quantity != 2 {
		t.Fatalf("duplicate with other quantity = %+v, %v", res, err)
	}
	f.stock(s, 10, 8, 2)
	if got := f.awaited(s); !sameIDs(got, []uuid.UUID{first.OrderID}) {
		t.Fatalf("awaited = %v, want only %s", got, first.OrderID)
	}
	if got := f.bought(s, alice); got != 2 {
		t.Fatalf("alice bought %d, want 2", got)
	}

	// The same key by another user, or another key by the same user, or the same key in
	// another sale, is a new order.
	b := f.reserve(s, bob, 1, "k1")
	a2 := f.reserve(s, alice, 1, "k2")
	other := f.liveSale(5, 5)
	a3 := f.reserve(other, alice, 1, "k1")
	if b.OrderID == first.OrderID || a2.OrderID == first.OrderID || a3.OrderID == first.OrderID {
		t.Fatalf("distinct requests share an order")
	}
	f.stock(s, 10, 6, 4)
	f.stock(other, 5, 4, 1)

	// A duplicate is recognised before the limit: alice is at 3 of 4, a replay of k1 (2 units)
	// still answers with the first order.
	res, err = f.inv.Reserve(f.ctx, f.reservation(s, alice, 2, "k1"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != first.OrderID || !f.remainingIs(res.Remaining, 6) {
		t.Fatalf("duplicate near the limit = %+v, %v", res, err)
	}
	// ... and before the window and the stock: the sale has ended and is sold out.
	bob2 := f.reserve(s, bob, 3, "b2")
	carol := uuid.New()
	f.reserve(s, carol, 3, "c1")
	f.stock(s, 10, 0, 10)
	ended := s
	ended.StartsAt, ended.EndsAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	f.sync(ended, 0)
	res, err = f.inv.Reserve(f.ctx, f.reservation(s, bob, 3, "b2"))
	if err != nil || !res.Duplicate || res.Reservation != bob2 || !f.remainingIs(res.Remaining, 0) {
		t.Fatalf("duplicate after the end of a sold-out sale = %+v, %v, want %+v", res, err, bob2)
	}
}

func testReservationRecords(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 5)
	other1, other2 := f.liveSale(5, 5), f.liveSale(5, 5)
	user := uuid.New()

	before := time.Now()
	r1 := f.reserve(s, user, 2, "k1")
	after := time.Now()
	want := domain.Reservation{
		OrderID: r1.OrderID, TenantID: f.tenant, SaleID: s.ID, UserID: user, Quantity: 2, IdempotencyKey: "k1",
		UnitPriceCents: 1999, Currency: "EUR", CreatedAt: r1.CreatedAt, Status: domain.OrderPending,
		Seq: r1.Seq, // numbered or not: RestoreSaleRebuildsAnInventoryBehindTheOrders
	}
	if r1 != want {
		t.Fatalf("reservation = %+v, want %+v", r1, want)
	}
	// The store's clock, in milliseconds; same host, so a second of slack is plenty.
	if r1.CreatedAt.Before(before.Add(-time.Second)) || r1.CreatedAt.After(after.Add(time.Second)) {
		t.Fatalf("CreatedAt %v not within [%v, %v]", r1.CreatedAt, before, after)
	}
	if r1.CreatedAt.Location() != time.UTC || r1.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("CreatedAt %v is not UTC milliseconds", r1.CreatedAt)
	}
	got, ok, err := f.inv.Reservation(f.ctx, f.tenant, s.ID, r1.OrderID)
	if err != nil || !ok || got != r1 {
		t.Fatalf("Reservation(r1) = %+v ok=%v err=%v, want %+v", got, ok, err, r1)
	}

	// The price is copied at reservation time: a later price change leaves r1 alone.
	repriced := s
	repriced.PriceCents, repriced.Currency = 2500, "USD"
	f.sync(repriced, 0)
	r2 := f.reserve(s, user, 1, "k2")
	if r2.UnitPriceCents != 2500 || r2.Currency != "USD" {
		t.Fatalf("reservation after repricing: %d %s, want 2500 USD", r2.UnitPriceCents, r2.Currency)
	}
	got, ok, err = f.inv.Reservation(f.ctx, f.tenant, s.ID, r1.OrderID)
	if err != nil || !ok || got != r1 {
		t.Fatalf("Reservation(r1) = %+v ok=%v err=%v, want %+v", got, ok, err, r1)
	}

	// FindReservation looks across sales and reports the one holding the order.
	found, ok, err := f.inv.FindReservation(f.ctx, f.tenant, []uuid.UUID{other1.ID, s.ID, other2.ID}, r2.OrderID)
	if err != nil || !ok || found != r2 {
		t.Fatalf("FindReservation = %+v ok=%v err=%v, want %+v", found, ok, err, r2)
	}
	for name, lookup := range map[string]func() (domain.Reservation, bool, error){
		"wrong sale": func() (domain.Reservation, bool, error) {
			return f.inv.Reservation(f.ctx, f.tenant, other1.ID, r1.OrderID)
		},
		"other tenant": func() (domain.Reservation, bool, error) {
			return f.inv.Reservation(f.ctx, uuid.New(), s.ID, r1.OrderID)
		},
		"other tenant, found across sales": func() (domain.Reservation, bool, error) {
			return f.inv.FindReservation(f.ctx, uuid.New(), []uuid.UUID{s.ID}, r1.OrderID)
		},
		"unknown order": func() (domain.Reservation, bool, error) {
			return f.inv.FindReservation(f.ctx, f.tenant, []uuid.UUID{other1.ID, s.ID, other2.ID}, uuid.New())
		},
		"not among the sales": func() (domain.Reservation, bool, error) {
			return f.inv.FindReservation(f.ctx, f.tenant, []uuid.UUID{other1.ID, other2.ID}, r1.OrderID)
		},
		"no sales": func() (domain.Reservation, bool, error) {
			return f.inv.FindReservation(f.ctx, f.tenant, nil, r1.OrderID)
		},
	} {
		if r, ok, err := lookup(); err != nil || ok {
			t.Errorf("%s: found %+v ok=%v err=%v, want nothing", name, r, ok, err)
		}
	}
}

// waitPast waits until the local clock is well past t, so that the store's millisecond clock
// (same host) has moved on too.
func waitPast(t *testing.T, ts time.Time) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !time.Now().After(ts.Add(20 * time.Millisecond)) {
		if time.Now().After(deadline) {
			t.Fatalf("the clock did not pass %v", ts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testAwaitedAndMarkConfirmed(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 10)
	user := uuid.New()

	r1 := f.reserve(s, user, 1, "k1")
	waitPast(t, r1.CreatedAt) // so r2 is strictly younger than r1
	r2 := f.reserve(s, user, 1, "k2")
	r3 := f.reserve(s, user, 1, "k3")
	if !r2.CreatedAt.After(r1.CreatedAt) {
		t.Fatalf("r2 (%v) is not younger than r1 (%v)", r2.CreatedAt, r1.CreatedAt)
	}

	awaited := func(before time.Time, limit int) []uuid.UUID {
		t.Helper()
		rs, err := f.inv.AwaitedReservations(f.ctx, f.tenant, s.ID, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]uuid.UUID, len(rs))
		for i, r := range rs {
			ids[i] = r.OrderID
			full := map[uuid.UUID]domain.Reservation{r1.OrderID: r1, r2.OrderID: r2, r3.OrderID: r3}[r.OrderID]
			if r != full {
				t.Errorf("awaited reservation = %+v, want %+v", r, full)
			}
		}
		return ids
	}
	if got := awaited(r1.CreatedAt.Add(-time.Millisecond), 0); len(got) != 0 {
		t.Fatalf("awaited before r1 = %v, want none", got)
	}
	// The bound is inclusive, to the millisecond.
	if got := awaited(r1.CreatedAt, 0); !sameIDs(got, []uuid.UUID{r1.OrderID}) {
		t.Fatalf("awaited up to r1 = %v, want only r1 %s", got, r1.OrderID)
	}
	if got := awaited(r2.CreatedAt.Add(-time.Millisecond), 0); !sameIDs(got, []uuid.UUID{r1.OrderID}) {
		t.Fatalf("awaited before r2 = %v, want only r1 %s", got, r1.OrderID)
	}
	all := []uuid.UUID{r1.OrderID, r2.OrderID, r3.OrderID}
	if got := awaited(time.Now().Add(time.Minute), 0); !sameIDs(got, all) {
		t.Fatalf("awaited = %v, want %v", got, all)
	}
	// Oldest first, so a limited sweep takes the longest-waiting order.
	if got := awaited(time.Now().Add(time.Minute), 1); len(got) != 1 || got[0] != r1.OrderID {
		t.Fatalf("awaited limit 1 = %v, want [%s]", got, r1.OrderID)
	}
	if got := awaited(time.Now().Add(time.Minute), 2); len(got) != 2 || got[0] != r1.OrderID {
		t.Fatalf("awaited limit 2 = %v, want r1 %s first", got, r1.OrderID)
	}
	if got, err := f.inv.AwaitedReservations(f.ctx, f.tenant, uuid.New(), time.Now().Add(time.Minute), 0); err != nil || len(got) != 0 {
		t.Fatalf("awaited of an unknown sale = %v, %v", got, err)
	}
	if got, err := f.inv.AwaitedReservations(f.ctx, uuid.New(), s.ID, time.Now().Add(time.Minute), 0); err != nil || len(got) != 0 {
		t.Fatalf("awaited of another tenant = %v, %v", got, err)
	}

	if err := f.inv.MarkConfirmed(f.ctx, r2); err != nil {
		t.Fatal(err)
	}
	if got := awaited(time.Now().Add(time.Minute), 0); !sameIDs(got, []uuid.UUID{r1.OrderID, r3.OrderID}) {
		t.Fatalf("awaited after confirming r2 = %v", got)
	}
	if st := f.status(s, r2.OrderID); st != domain.OrderConfirmed {
		t.Fatalf("r2 status %q, want confirmed", st)
	}
	// Confirming again changes nothing; confirming keeps the stock taken.
	if err := f.inv.MarkConfirmed(f.ctx, r2); err != nil {
		t.Fatal(err)
	}
	if st := f.status(s, r2.OrderID); st != domain.OrderConfirmed {
		t.Fatalf("r2 status %q after second confirm, want confirmed", st)
	}
	f.stock(s, 10, 7, 3)
	if inv := f.inventory(s); inv.Pending != 2 {
		t.Fatalf("pending = %d after confirming one of three units, want 2", inv.Pending)
	}
	// A confirmed reservation cannot be released.
	released, err := f.inv.Release(f.ctx, r2)
	if err != nil || released {
		t.Fatalf("Release(confirmed) = %v, %v, want false", released, err)
	}
	f.stock(s, 10, 7, 3)
	if st := f.status(s, r2.OrderID); st != domain.OrderConfirmed {
		t.Fatalf("r2 status %q after release attempt, want confirmed", st)
	}
	// A failed reservation is not confirmed: it stays failed, its stock given back.
	f.release(r3)
	if err := f.inv.MarkConfirmed(f.ctx, r3); err != nil {
		t.Fatal(err)
	}
	if st := f.status(s, r3.OrderID); st != domain.OrderFailed {
		t.Fatalf("r3 status %q after confirming a released order, want failed", st)
	}
	f.stock(s, 10, 8, 2)
	// Confirming an unknown order, or an order of an unknown sale, is harmless.
	if err := f.inv.MarkConfirmed(f.ctx, f.reservation(s, user, 1, "none")); err != nil {
		t.Fatal(err)
	}
	if err := f.inv.MarkConfirmed(f.ctx, f.reservation(f.newSale(1, 1, 0, time.Hour), user, 1, "none")); err != nil {
		t.Fatal(err)
	}
	f.stock(s, 10, 8, 2)
	if got := awaited(time.Now().Add(time.Minute), 0); !sameIDs(got, []uuid.UUID{r1.OrderID}) {
		t.Fatalf("awaited at the end = %v, want only r1", got)
	}
}

func testReleaseOnce(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(5, 2)
	alice, bob := uuid.New(), uuid.New()

	a := f.reserve(s, alice, 2, "a1")
	b := f.reserve(s, bob, 1, "b1")
	f.stock(s, 5, 2, 3)
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, alice, 1, "a2")); !errors.Is(err, domain.ErrPurchaseLimitExceeded) {
		t.Fatalf("alice over the limit: %v", err)
	}

	released, err := f.inv.Release(f.ctx, a)
	if err != nil || !released {
		t.Fatalf("Release = %v, %v, want true", released, err)
	}
	f.stock(s, 5, 4, 1)
	if st := f.status(s, a.OrderID); st != domain.OrderFailed {
		t.Fatalf("status %q, want failed", st)
	}
	// The record is otherwise unchanged.
	wantFailed := a
	wantFailed.Status = domain.OrderFailed
	if got, ok, err := f.inv.Reservation(f.ctx, s.TenantID, s.ID, a.OrderID); err != nil || !ok || got != wantFailed {
		t.Fatalf("released reservation = %+v ok=%v err=%v, want %+v", got, ok, err, wantFailed)
	}
	if got := f.awaited(s); !sameIDs(got, []uuid.UUID{b.OrderID}) {
		t.Fatalf("awaited = %v, want only bob's %s", got, b.OrderID)
	}
	if got := f.bought(s, alice); got != 0 {
		t.Fatalf("alice bought %d after release, want 0", got)
	}

	// Alice's allowance is back: she can buy her two units again.
	a2 := f.reserve(s, alice, 2, "a2")
	f.stock(s, 5, 2, 3)

	// Releasing again is a no-op: no stock or allowance comes back twice.
	released, err = f.inv.Release(f.ctx, a)
	if err != nil || released {
		t.Fatalf("second Release = %v, %v, want false", released, err)
	}
	f.stock(s, 5, 2, 3)
	if got := f.bought(s, alice); got != 2 {
		t.Fatalf("alice bought %d, want 2", got)
	}
	if got := f.awaited(s); !sameIDs(got, []uuid.UUID{b.OrderID, a2.OrderID}) {
		t.Fatalf("awaited = %v", got)
	}
	// An unknown order, or an order of an unknown sale, releases nothing.
	released, err = f.inv.Release(f.ctx, f.reservation(s, alice, 2, "ghost"))
	if err != nil || released {
		t.Fatalf("Release(unknown) = %v, %v", released, err)
	}
	released, err = f.inv.Release(f.ctx, f.reservation(f.newSale(1, 1, 0, time.Hour), alice, 2, "ghost"))
	if err != nil || released {
		t.Fatalf("Release(unknown sale) = %v, %v", released, err)
	}
	f.stock(s, 5, 2, 3)
	// The duplicate of a released order's key answers with the failed order, taking nothing.
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, alice, 2, "a1"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != a.OrderID || res.Reservation.Status != domain.OrderFailed {
		t.Fatalf("replay of released key = %+v, %v", res, err)
	}
	f.stock(s, 5, 2, 3)
}

func testConcurrentRelease(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 5)
	user := uuid.New()
	r := f.reserve(s, user, 3, "k")
	f.stock(s, 10, 7, 3)

	const n = 50
	results := make([]bool, n)
	race(n, func(i int) {
		released, err := f.inv.Release(f.ctx, r)
		if err != nil {
			t.Error(err)
		}
		results[i] = released
	})
	if count := len(slices.DeleteFunc(results, func(ok bool) bool { return !ok })); count != 1 {
		t.Fatalf("%d releases succeeded, want exactly 1", count)
	}
	f.stock(s, 10, 10, 0)
	if got := f.bought(s, user); got != 0 {
		t.Fatalf("bought %d after the releases, want 0", got)
	}
}

// testConcurrentConfirmAndRelease: the worker confirming an order and the reconciler giving it
// up at the same moment; one of them wins, and the stock agrees with the winner.
func testConcurrentConfirmAndRelease(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	const orders = 20
	s := f.liveSale(orders*2, 2)
	rs := make([]domain.Reservation, orders)
	for i := range rs {
		rs[i] = f.reserve(s, uuid.New(), 2, "k")
	}
	released := make([]bool, orders)
	race(2*orders, func(i int) {
		r := rs[i/2]
		if i%2 == 0 {
			if err := f.inv.MarkConfirmed(f.ctx, r); err != nil {
				t.Error(err)
			}
			return
		}
		ok, err := f.inv.Release(f.ctx, r)
		if err != nil {
			t.Error(err)
		}
		released[i/2] = ok
	})
	sold := 0
	for i, r := range rs {
		st := f.status(s, r.OrderID)
		switch {
		case released[i] && st != domain.OrderFailed:
			t.Errorf("order %d released but %q", i, st)
		case !released[i] && st != domain.OrderConfirmed:
			t.Errorf("order %d not released but %q", i, st)
		case !released[i]:
			sold += 2
		}
	}
	f.stock(s, orders*2, orders*2-sold, sold)
	if inv := f.inventory(s); inv.Pending != 0 {
		t.Fatalf("pending = %d, want 0: every order was confirmed or released", inv.Pending)
	}
	if got := f.awaited(s); len(got) != 0 {
		t.Fatalf("awaited = %v, want none", got)
	}
}

func testRereserve(t *testing.T, newFixture func(t *testing.T) *fixture) {
	t.Run("takes the stock again", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.liveSale(5, 3)
		user := uuid.New()
		r := f.reserve(s, user, 2, "k")
		if released, err := f.inv.Release(f.ctx, r); err != nil || !released {
			t.Fatalf("Release = %v, %v", released, err)
		}
		f.stock(s, 5, 5, 0)

		got, err := f.inv.Rereserve(f.ctx, r)
		if err != nil {
			t.Fatalf("Rereserve: %v", err)
		}
		want := r
		want.Status, want.Seq = domain.OrderPending, got.Seq
		if got != want {
			t.Fatalf("Rereserve = %+v, want %+v", got, want)
		}
		f.stock(s, 5, 3, 2)
		if st := f.status(s, r.OrderID); st != domain.OrderPending {
			t.Fatalf("status %q, want pending", st)
		}
		if ids := f.awaited(s); !sameIDs(ids, []uuid.UUID{r.OrderID}) {
			t.Fatalf("awaited = %v, want %s", ids, r.OrderID)
		}
		if got := f.bought(s, user); got != 2 {
			t.Fatalf("bought %d, want 2", got)
		}
		// Rereserving a pending reservation does not take the stock a second time.
		if again, err := f.inv.Rereserve(f.ctx, r); err != nil || again != want {
			t.Fatalf("Rereserve(pending) = %+v, %v, want %+v", again, err, want)
		}
		f.stock(s, 5, 3, 2)
		if got := f.bought(s, user); got != 2 {
			t.Fatalf("bought %d after second Rereserve, want 2", got)
		}
		// It is an ordinary pending reservation again: confirmed, it leaves the awaited ones.
		if err := f.inv.MarkConfirmed(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		f.stock(s, 5, 3, 2)
		if ids := f.awaited(s); len(ids) != 0 {
			t.Fatalf("awaited after confirming = %v, want none", ids)
		}
	})

	t.Run("awaited from the retry", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.liveSale(5, 5)
		r1 := f.reserve(s, uuid.New(), 1, "k1")
		f.release(r1)
		waitPast(t, r1.CreatedAt)
		r2 := f.reserve(s, uuid.New(), 1, "k2")
		waitPast(t, r2.CreatedAt)
		if _, err := f.inv.Rereserve(f.ctx, r1); err != nil {
			t.Fatal(err)
		}
		// r1 was created first but waits since its retry, after r2.
		rs, err := f.inv.AwaitedReservations(f.ctx, f.tenant, s.ID, time.Now().Add(time.Minute), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].OrderID != r2.OrderID || rs[1].OrderID != r1.OrderID {
			t.Fatalf("awaited = %+v, want r2 %s then r1 %s", rs, r2.OrderID, r1.OrderID)
		}
		if rs[1].CreatedAt != r1.CreatedAt {
			t.Fatalf("rereserved CreatedAt %v, want the original %v", rs[1].CreatedAt, r1.CreatedAt)
		}
		rs, err = f.inv.AwaitedReservations(f.ctx, f.tenant, s.ID, r2.CreatedAt, 0)
		if err != nil || len(rs) != 1 || rs[0].OrderID != r2.OrderID {
			t.Fatalf("awaited up to r2 = %+v, %v, want only r2", rs, err)
		}
	})

	t.Run("ignores the sale window", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.liveSale(5, 3)
		r := f.reserve(s, uuid.New(), 1, "k")
		if _, err := f.inv.Release(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		ended := s
		ended.StartsAt, ended.EndsAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		f.sync(ended, 0)
		if _, err := f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "late")); !errors.Is(err, domain.ErrSaleNotActive) {
			t.Fatalf("Reserve on ended sale: %v", err)
		}
		if got, err := f.inv.Rereserve(f.ctx, r); err != nil || got.Status != domain.OrderPending {
			t.Fatalf("Rereserve on ended sale = %+v, %v", got, err)
		}
		f.stock(s, 5, 4, 1)
	})

	refusals := []struct {
		name string
		// setup returns the reservation to rereserve.
		setup   func(f *fixture, s domain.Sale) domain.Reservation
		wantErr *domain.Error
		// stock after the refusal: total 4, limit 2.
		remaining, sold int
		wantStatus      domain.OrderStatus
	}{
		{
			name: "sold out",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				r := f.reserve(s, uuid.New(), 2, "k")
				f.release(r)
				f.reserve(s, uuid.New(), 2, "x")
				f.reserve(s, uuid.New(), 2, "y")
				return r
			},
			wantErr: domain.ErrSoldOut.WithDetail("the sale has no stock left"), remaining: 0, sold: 4, wantStatus: domain.OrderFailed,
		},
		{
			name: "insufficient stock",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				r := f.reserve(s, uuid.New(), 2, "k")
				f.release(r)
				f.reserve(s, uuid.New(), 2, "x")
				f.reserve(s, uuid.New(), 1, "y")
				return r
			},
			wantErr: domain.ErrInsufficientStock.WithDetail("2 requested, 1 left"), remaining: 1, sold: 3, wantStatus: domain.OrderFailed,
		},
		{
			name: "limit used meanwhile",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				user := uuid.New()
				r := f.reserve(s, user, 2, "k")
				f.release(r)
				f.reserve(s, user, 1, "again")
				return r
			},
			wantErr:   domain.ErrPurchaseLimitExceeded.WithDetail("2 more would exceed the per-user limit: 1 more allowed"),
			remaining: 3, sold: 1, wantStatus: domain.OrderFailed,
		},
		{
			name: "confirmed",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				r := f.reserve(s, uuid.New(), 2, "k")
				if err := f.inv.MarkConfirmed(f.ctx, r); err != nil {
					f.t.Fatal(err)
				}
				return r
			},
			wantErr:   domain.ErrOrderNotRetryable.WithDetail("the order is not failed in the inventory"),
			remaining: 2, sold: 2, wantStatus: domain.OrderConfirmed,
		},
		{
			name: "unknown order",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				return f.reservation(s, uuid.New(), 1, "k")
			},
			wantErr:   domain.ErrOrderNotRetryable.WithDetail("the order is not failed in the inventory"),
			remaining: 4, sold: 0,
		},
		{
			name: "unknown sale",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				return f.reservation(f.newSale(4, 2, 0, time.Hour), uuid.New(), 1, "k")
			},
			wantErr:   domain.ErrOrderNotRetryable.WithDetail("the order is not failed in the inventory"),
			remaining: 4, sold: 0,
		},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			s := f.liveSale(4, 2)
			r := tc.setup(f, s)
			got, err := f.inv.Rereserve(f.ctx, r)
			wantDomainErr(t, err, tc.wantErr)
			if got != (domain.Reservation{}) {
				t.Fatalf("refused Rereserve returned %+v", got)
			}
			f.stock(s, 4, tc.remaining, tc.sold)
			if tc.wantStatus != "" {
				if st := f.status(s, r.OrderID); st != tc.wantStatus {
					t.Fatalf("status %q, want %q", st, tc.wantStatus)
				}
				for _, id := range f.awaited(s) {
					if id == r.OrderID {
						t.Fatalf("refused order %s is awaited", id)
					}
				}
			}
		})
	}
}

// testConcurrentRereserve: an admin retrying a dead letter twice at once takes its stock once.
func testConcurrentRereserve(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 3)
	user := uuid.New()
	r := f.reserve(s, user, 3, "k")
	f.release(r)

	const n = 30
	race(n, func(int) {
		got, err := f.inv.Rereserve(f.ctx, r)
		if err != nil || got.Status != domain.OrderPending || got.OrderID != r.OrderID {
			t.Errorf("Rereserve = %+v, %v", got, err)
		}
	})
	f.stock(s, 10, 7, 3)
	if got := f.bought(s, user); got != 3 {
		t.Fatalf("bought %d, want 3", got)
	}
	if ids := f.awaited(s); !sameIDs(ids, []uuid.UUID{r.OrderID}) {
		t.Fatalf("awaited = %v, want %s once", ids, r.OrderID)
	}
}

func testSyncSaleOnALiveSale(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 5)
	user := uuid.New()
	f.reserve(s, user, 3, "k1")
	f.stock(s, 10, 7, 3)

	for _, step := range []struct {
		total           int
		remaining, sold int
	}{
		{20, 17, 3}, // raised: the new units go on sale
		{5, 2, 3},   // lowered: the sold units stay sold
		{3, 0, 3},   // down to exactly the units sold
		{8, 5, 3},
	} {
		s.TotalStock = step.total
		got := f.sync(s, 99) // the hint is ignored: the inventory exists
		want := domain.Inventory{SaleID: s.ID, TenantID: f.tenant, Total: step.total, Remaining: step.remaining, Sold: step.sold}
		if got != want {
			t.Fatalf("SyncSale(total %d) = %+v, want %+v", step.total, got, want)
		}
		f.stock(s, step.total, step.remaining, step.sold)
	}

	// Below the units sold: refused, and nothing changes, not even the other fields.
	bad := s
	bad.TotalStock, bad.PerUserLimit, bad.PriceCents, bad.Currency = 2, 1, 1, "USD"
	bad.StartsAt, bad.EndsAt = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	inv, err := f.inv.SyncSale(f.ctx, bad, 0)
	wantDomainErr(t, err, domain.ErrStockBelowSold.WithDetail("totalStock 2 is below the 3 units already sold"))
	if inv != (domain.Inventory{}) {
		t.Fatalf("refused SyncSale returned %+v", inv)
	}
	f.stock(s, 8, 5, 3)
	// Still open, at the old price, with the old limit: another buyer takes 2 units.
	probe := f.reserve(s, uuid.New(), 2, "probe")
	if probe.UnitPriceCents != 1999 || probe.Currency != "EUR" {
		t.Fatalf("price after a refused SyncSale: %d %s, want 1999 EUR", probe.UnitPriceCents, probe.Currency)
	}
	f.release(probe)
	f.stock(s, 8, 5, 3)

	// A changed limit applies at once: user has 3 of 5; lowered to 3 they can buy no more.
	s.PerUserLimit = 3
	f.sync(s, 0)
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, user, 1, "k2")); !errors.Is(err, domain.ErrPurchaseLimitExceeded) {
		t.Fatalf("Reserve after lowering the limit: %v", err)
	}
	// Lowered below what they hold, the allowance is negative; they keep their units.
	s.PerUserLimit = 2
	f.sync(s, 0)
	_, err = f.inv.Reserve(f.ctx, f.reservation(s, user, 1, "k2"))
	wantDomainErr(t, err, domain.ErrPurchaseLimitExceeded.WithDetail("1 more would exceed the per-user limit: -1 more allowed"))
	s.PerUserLimit = 4
	f.sync(s, 0)
	f.reserve(s, user, 1, "k2")
	// A changed window applies at once too.
	s.StartsAt, s.EndsAt = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	f.sync(s, 0)
	_, err = f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "k3"))
	wantDomainErr(t, err, domain.ErrSaleNotStarted)
	f.stock(s, 8, 4, 4)
	// The pending units are kept across syncs: only confirmation and release change them.
	if inv := f.inventory(s); inv.Pending != 4 {
		t.Fatalf("pending = %d, want 4", inv.Pending)
	}
}

func testSyncSaleSoldHint(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)

	// The hint seeds the sold count of a new inventory (rebuilding it after Redis lost it).
	s := f.newSale(10, 5, -time.Minute, time.Hour)
	got := f.sync(s, 4)
	if want := (domain.Inventory{SaleID: s.ID, TenantID: f.tenant, Total: 10, Remaining: 6, Sold: 4}); got != want {
		t.Fatalf("SyncSale with hint = %+v, want %+v", got, want)
	}
	// The seeded units are sold, not pending: nobody awaits them.
	f.stock(s, 10, 6, 4)
	if inv := f.inventory(s); inv.Pending != 0 {
		t.Fatalf("pending = %d after seeding, want 0", inv.Pending)
	}
	// Once the inventory exists the hint is ignored.
	got = f.sync(s, 9)
	if got.Sold != 4 || got.Remaining != 6 {
		t.Fatalf("SyncSale with a later hint = %+v, want sold 4 remaining 6", got)
	}
	s.TotalStock = 12
	got = f.sync(s, 0)
	if got.Sold != 4 || got.Remaining != 8 {
		t.Fatalf("SyncSale with hint 0 = %+v, want sold 4 remaining 8", got)
	}
	f.stock(s, 12, 8, 4)

	// A hint above the total creates nothing.
	s2 := f.newSale(3, 1, -time.Minute, time.Hour)
	_, err := f.inv.SyncSale(f.ctx, s2, 4)
	wantDomainErr(t, err, domain.ErrStockBelowSold.WithDetail("totalStock 3 is below the 4 units already sold"))
	if _, ok, err := f.inv.Inventory(f.ctx, f.tenant, s2.ID); err != nil || ok {
		t.Fatalf("refused SyncSale created an inventory: ok=%v err=%v", ok, err)
	}
	// Equal to the total is a sold-out inventory.
	got = f.sync(s2, 3)
	if got.Remaining != 0 || got.Sold != 3 {
		t.Fatalf("SyncSale(hint = total) = %+v", got)
	}
	_, err = f.inv.Reserve(f.ctx, f.reservation(s2, uuid.New(), 1, "k"))
	wantDomainErr(t, err, domain.ErrSoldOut)
}

// testConcurrentSyncSale: API nodes seeding the same unknown sale at once, each with its own
// count of the units sold: one creates the inventory, the others apply their change to it.
func testConcurrentSyncSale(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.newSale(50, 5, -time.Minute, time.Hour)
	const n = 20
	results := make([]domain.Inventory, n)
	race(n, func(i int) {
		inv, err := f.inv.SyncSale(f.ctx, s, i)
		if err != nil {
			t.Errorf("SyncSale(hint %d): %v", i, err)
		}
		results[i] = inv
	})
	final := f.inventory(s)
	if final.Sold < 0 || final.Sold >= n || final.Total != 50 || final.Remaining != 50-final.Sold || final.Pending != 0 {
		t.Fatalf("inventory = %+v, want one of the hints sold", final)
	}
	for i, got := range results {
		want := domain.Inventory{SaleID: s.ID, TenantID: f.tenant, Total: 50, Remaining: 50 - final.Sold, Sold: final.Sold}
		if got != want {
			t.Errorf("SyncSale(hint %d) = %+v, want %+v (the first hint applied)", i, got, want)
		}
	}
}

// testConcurrentReserve: requests reservations race for 100 units with a limit of 2 per user,
// buyers making 2.5 purchases each on average; every request is sent twice at once (a client
// retry), the pair sharing its key. Never oversold, never over a limit, each purchase once.
func testConcurrentReserve(t *testing.T, newFixture func(t *testing.T) *fixture, requests int) {
	const stock, limit = 100, 2
	purchases := requests / 2
	users := purchases * 2 / 5 // 2.5 purchases each: the limit bites, and 0.8 units a purchase empty the stock
	f := newFixture(t)
	s := f.liveSale(stock, limit)
	userIDs := make([]uuid.UUID, users)
	for i := range userIDs {
		userIDs[i] = uuid.New()
	}

	type outcome struct {
		req  int
		user int
		res  ports.ReserveResult
		err  error
	}
	out := make([]outcome, requests)
	race(requests, func(i int) {
		j := i / 2 // requests 2j and 2j+1 are the same purchase
		user := j % users
		r := f.reservation(s, userIDs[user], 1, fmt.Sprintf("req-%d", j))
		res, err := f.inv.Reserve(f.ctx, r)
		out[i] = outcome{req: i, user: user, res: res, err: err}
	})

	accepted := map[uuid.UUID]int{} // order -> user
	perUser := map[int]int{}
	byPurchase := map[int]uuid.UUID{} // purchase j -> order taken
	var dups []outcome
	soldOut, limited := 0, 0
	for _, o := range out {
		switch {
		case o.err == nil && !o.res.Duplicate:
			if o.res.Remaining < 0 || o.res.Remaining >= stock {
				t.Errorf("accepted with remaining %d", o.res.Remaining)
			}
			if _, dup := accepted[o.res.Reservation.OrderID]; dup {
				t.Errorf("order %s accepted twice", o.res.Reservation.OrderID)
			}
			if prev, ok := byPurchase[o.req/2]; ok {
				t.Errorf("purchase %d accepted twice: %s and %s", o.req/2, prev, o.res.Reservation.OrderID)
			}
			accepted[o.res.Reservation.OrderID] = o.user
			byPurchase[o.req/2] = o.res.Reservation.OrderID
			perUser[o.user]++
		case o.err == nil:
			dups = append(dups, o)
		case errors.Is(o.err, domain.ErrSoldOut):
			soldOut++
		case errors.Is(o.err, domain.ErrPurchaseLimitExceeded):
			limited++
		default:
			t.Errorf("request %d: unexpected error %v", o.req, o.err)
		}
	}
	for _, d := range dups {
		if want, ok := byPurchase[d.req/2]; !ok || d.res.Reservation.OrderID != want {
			t.Errorf("duplicate of purchase %d answered %s, want the accepted %s", d.req/2, d.res.Reservation.OrderID, want)
		}
	}
	if len(accepted) != stock {
		t.Fatalf("%d units reserved, want exactly %d", len(accepted), stock)
	}
	if len(accepted)+len(dups)+soldOut+limited != requests {
		t.Fatalf("outcomes do not add up: %d accepted, %d duplicates, %d sold out, %d limited",
			len(accepted), len(dups), soldOut, limited)
	}
	// Exactly one request took the last unit.
	lastUnit := 0
	for _, o := range out {
		if o.err == nil && !o.res.Duplicate && o.res.Remaining == 0 {
			lastUnit++
		}
	}
	// In shards, the purchases that take the last units of several shards at once may each
	// see the whole sale empty.
	if lastUnit < 1 || lastUnit > max(f.shards, 1) {
		t.Errorf("%d accepted requests saw 0 remaining, want exactly 1 (at most one per shard)", lastUnit)
	}
	f.stock(s, stock, 0, stock)
	awaited := f.awaited(s)
	ids := make([]uuid.UUID, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	if !sameIDs(awaited, ids) {
		t.Fatalf("%d awaited reservations, want exactly the %d accepted", len(awaited), len(accepted))
	}
	for u, got := range f.boughtBy(s, userIDs...) {
		if n := perUser[u]; n > limit || got != n {
			t.Errorf("user %d: accepted %d units, inventory counts %d, limit %d", u, n, got, limit)
		}
	}
}

// rebuilt lets the store tell of the rebuild of s: a store that remembers the reservations it
// accepted may answer its next purchase of the sale ErrRolledBack, once (they may be among those
// lost; see ports.ErrRolledBack). The probe asks for more than the limit: it takes nothing. A
// sharded store tells it on the first purchase that reaches a shard it had accepted in: the
// probes are many buyers, spread over the shards.
func (f *fixture) rebuilt(s domain.Sale) {
	f.t.Helper()
	probes := 1
	if f.shards > 1 {
		probes = 16 * f.shards
	}
	for range probes {
		_, err := f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), s.PerUserLimit+1, "probe-"+uuid.NewString()))
		if err == nil {
			f.t.Fatal("a purchase above the limit was accepted")
		}
		if errors.Is(err, ports.ErrRolledBack) {
			return
		}
	}
}

// lostOrder is an accepted order of user in s whose reservation the store does not have, as
// after a loss: it carries the sale's price and a creation time in the past.
func (f *fixture) lostOrder(s domain.Sale, user uuid.UUID, qty int, key string) domain.Reservation {
	r := f.reservation(s, user, qty, key)
	r.UnitPriceCents, r.Currency = s.PriceCents, s.Currency
	r.CreatedAt = time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	return r
}

func testAdopt(t *testing.T, newFixture func(t *testing.T) *fixture) {
	t.Run("takes a lost order's stock once", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.liveSale(5, 3)
		user := uuid.New()
		lost := f.lostOrder(s, user, 2, "lost")
		got, adopted, err := f.inv.Adopt(f.ctx, lost)
		want := lost
		want.Status, want.Seq = domain.OrderPending, got.Seq
		if err != nil || !adopted || got != want {
			t.Fatalf("Adopt = %+v, %v, %v; want %+v adopted", got, adopted, err, want)
		}
		f.stock(s, 5, 3, 2)
		if ids := f.awaited(s); !sameIDs(ids, []uuid.UUID{lost.OrderID}) {
			t.Fatalf("awaited = %v, want the adopted order", ids)
		}
		if b := f.bought(s, user); b != 2 {
			t.Fatalf("bought %d, want 2", b)
		}
		again, adopted, err := f.inv.Adopt(f.ctx, lost)
		if err != nil || adopted || again != want {
			t.Fatalf("Adopt again = %+v, %v, %v; want the same reservation, not adopted", again, adopted, err)
		}
		f.stock(s, 5, 3, 2)
		// Its key is the order's: a retry of the purchase is a duplicate, not a second order.
		res, err := f.inv.Reserve(f.ctx, f.reservation(s, user, 2, "lost"))
		if err != nil || !res.Duplicate || res.Reservation.OrderID != lost.OrderID {
			t.Fatalf("Reserve with the adopted order's key = %+v, %v; want its duplicate", res, err)
		}
		// A reservation the store has is returned as it is.
		kept := f.reserve(s, uuid.New(), 1, "kept")
		if got, adopted, err := f.inv.Adopt(f.ctx, kept); err != nil || adopted || got != kept {
			t.Fatalf("Adopt(kept) = %+v, %v, %v; want %+v", got, adopted, err, kept)
		}
	})
	t.Run("never oversells nor exceeds the limit", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.liveSale(3, 2)
		user := uuid.New()
		f.reserve(s, user, 2, "first")
		if _, _, err := f.inv.Adopt(f.ctx, f.lostOrder(s, user, 1, "over")); !errors.Is(err, domain.ErrPurchaseLimitExceeded) {
			t.Fatalf("Adopt over the limit: %v, want ErrPurchaseLimitExceeded", err)
		}
		if _, _, err := f.inv.Adopt(f.ctx, f.lostOrder(s, uuid.New(), 2, "big")); !errors.Is(err, domain.ErrInsufficientStock) {
			t.Fatalf("Adopt over the stock: %v, want ErrInsufficientStock", err)
		}
		f.reserve(s, uuid.New(), 1, "last")
		if _, _, err := f.inv.Adopt(f.ctx, f.lostOrder(s, uuid.New(), 1, "late")); !errors.Is(err, domain.ErrSoldOut) {
			t.Fatalf("Adopt when sold out: %v, want ErrSoldOut", err)
		}
		f.stock(s, 3, 0, 3)
	})
	t.Run("ignores the window, needs the sale", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		ended := f.newSale(5, 2, -2*time.Hour, time.Hour)
		f.sync(ended, 0)
		if _, adopted, err := f.inv.Adopt(f.ctx, f.lostOrder(ended, uuid.New(), 1, "k")); err != nil || !adopted {
			t.Fatalf("Adopt in an ended sale = %v, %v; want adopted (accepted inside the window)", adopted, err)
		}
		unknown := f.newSale(5, 2, -time.Hour, 2*time.Hour)
		if _, _, err := f.inv.Adopt(f.ctx, f.lostOrder(unknown, uuid.New(), 1, "k")); !errors.Is(err, domain.ErrSaleNotFound) {
			t.Fatalf("Adopt in an unknown sale: %v, want ErrSaleNotFound", err)
		}
	})
}

func testRestoreSale(t *testing.T, newFixture func(t *testing.T) *fixture) {
	t.Run("from the durable orders, fenced", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.newSale(10, 3, -time.Hour, 2*time.Hour)
		alice, bob := uuid.New(), uuid.New()
		order := func(user uuid.UUID, qty int, key string, st domain.OrderStatus) domain.Order {
			return domain.Order{ID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: user, Quantity: qty,
				IdempotencyKey: key, Status: st, UnitPriceCents: s.PriceCents, AmountCents: s.PriceCents * int64(qty),
				Currency: s.Currency, CreatedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)}
		}
		a, b := order(alice, 2, "a", domain.OrderConfirmed), order(bob, 3, "b", domain.OrderConfirmed)
		failed := order(alice, 1, "f", domain.OrderFailed)
		fence := time.Now().Add(700 * time.Millisecond)
		out, err := f.inv.RestoreSale(f.ctx, s, []domain.Order{a, b, failed}, ports.HighWater{}, fence)
		if inv := out.Inventory; err != nil || !out.Restored || inv.Total != 10 || inv.Remaining != 5 || inv.Sold != 5 {
			t.Fatalf("RestoreSale = %+v, %v; want 5 of 10 sold", out, err)
		}
		// Fenced: no new purchase, but a retried key finds its order at once.
		if _, err := f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "new")); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("Reserve while fenced: %v, want ErrUnavailable", err)
		}
		res, err := f.inv.Reserve(f.ctx, f.reservation(s, alice, 2, "a"))
		if err != nil || !res.Duplicate || res.Reservation.OrderID != a.ID || res.Reservation.Status != domain.OrderConfirmed ||
			res.Reservation.Quantity != 2 {
			t.Fatalf("Reserve with a restored key = %+v, %v; want order %s, confirmed, as a duplicate", res, err, a.ID)
		}
		// A failed order holds no stock, but its key still names it.
		res, err = f.inv.Reserve(f.ctx, f.reservation(s, alice, 1, "f"))
		if err != nil || !res.Duplicate || res.Reservation.OrderID != failed.ID || res.Reservation.Status != domain.OrderFailed {
			t.Fatalf("Reserve with a failed order's key = %+v, %v; want order %s, failed, as a duplicate", res, err, failed.ID)
		}
		// Orders accepted before the loss are adopted through the fence.
		if _, adopted, err := f.inv.Adopt(f.ctx, f.lostOrder(s, uuid.New(), 1, "in-flight")); err != nil || !adopted {
			t.Fatalf("Adopt while fenced = %v, %v; want adopted", adopted, err)
		}
		waitPast(t, fence)
		// The buyers' units hold against the limit.
		if _, err := f.inv.Reserve(f.ctx, f.reservation(s, bob, 1, "more")); !errors.Is(err, domain.ErrPurchaseLimitExceeded) {
			t.Fatalf("Reserve over a restored allowance: %v, want ErrPurchaseLimitExceeded", err)
		}
		f.reserve(s, alice, 1, "after")
		f.stock(s, 10, 3, 7)
		// A second restore changes nothing: the inventory exists.
		again, err := f.inv.RestoreSale(f.ctx, s, nil, ports.HighWater{}, time.Time{})
		if err != nil || again.Restored || again.Inventory.Remaining != 3 || again.Inventory.Sold != 7 {
			t.Fatalf("RestoreSale of a known sale = %+v, %v; want it unchanged", again, err)
		}
	})
	t.Run("refuses a total below the orders", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.newSale(1, 3, -time.Hour, 2*time.Hour)
		o := domain.Order{ID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: uuid.New(), Quantity: 2,
			IdempotencyKey: "k", Status: domain.OrderConfirmed, UnitPriceCents: 1, Currency: "EUR", CreatedAt: time.Now().UTC()}
		if _, err := f.inv.RestoreSale(f.ctx, s, []domain.Order{o}, ports.HighWater{}, time.Time{}); !errors.Is(err, domain.ErrStockBelowSold) {
			t.Fatalf("RestoreSale below sold: %v, want ErrStockBelowSold", err)
		}
		if _, ok, err := f.inv.Inventory(f.ctx, s.TenantID, s.ID); err != nil || ok {
			t.Fatalf("inventory after a refused restore: ok %v, %v; want none", ok, err)
		}
	})
}

// testRestoreBehind: reservations are numbered; an inventory whose number is below the orders'
// high-water mark lost reservations (it rolled back) and is rebuilt from the orders plus the
// pending reservations it still holds, oldest first as far as the stock goes.
func testRestoreBehind(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(10, 6)
	alice, bob, carol, dave := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	order := func(r domain.Reservation, st domain.OrderStatus) domain.Order {
		o := r.Order()
		o.Status = st
		return o
	}
	a := f.reserve(s, alice, 2, "a")
	b := f.reserve(s, bob, 1, "b")
	time.Sleep(5 * time.Millisecond) // c is the newest
	c := f.reserve(s, carol, 3, "c")
	// A sharded inventory numbers each shard apart (see domain.Inventory.Seq).
	sharded := f.shards > 1
	if !sharded && (a.Seq <= 0 || b.Seq <= a.Seq || c.Seq <= b.Seq) {
		t.Fatalf("reservation numbers %d, %d, %d; want increasing from 1", a.Seq, b.Seq, c.Seq)
	}
	if inv := f.inventory(s); (!sharded && inv.Seq != c.Seq) || inv.RolledBack {
		t.Fatalf("inventory number %d (rolled back %v), want %d, the last reservation's", inv.Seq, inv.RolledBack, c.Seq)
	}
	// Not behind: nothing changes.
	out, err := f.inv.RestoreSale(f.ctx, s, nil, ports.HighWater{Seq: c.Seq, OrderID: c.OrderID}, time.Now().Add(time.Hour))
	if err != nil || out.Restored || out.Inventory.Sold != 6 {
		t.Fatalf("RestoreSale at the high-water mark = %+v, %v; want the inventory kept", out, err)
	}
	// At the mark's number but without its reservation: behind (numbers reused after a rollback).
	// Here that order reached PostgreSQL failed: it holds no stock; the rest stays as it was.
	ghost := f.lostOrder(s, uuid.New(), 1, "ghost")
	out, err = f.inv.RestoreSale(f.ctx, s, []domain.Order{order(ghost, domain.OrderFailed)},
		ports.HighWater{Seq: c.Seq, OrderID: ghost.OrderID}, time.Time{})
	if err != nil || !out.Restored || out.Inventory.Sold != 6 || len(out.Dropped) != 0 {
		t.Fatalf("RestoreSale missing the mark's reservation = %+v, %v; want it rebuilt, 6 sold", out, err)
	}
	f.rebuilt(s)
	f.reserve(s, dave, 1, "not-fenced")
	// PostgreSQL holds a confirmed, and an order of 5 units with a higher number, which the
	// store no longer has: it lost it. b and dave's new order stay pending (on their way); c,
	// between them, no longer fits.
	lost := f.lostOrder(s, dave, 5, "lost")
	lost.Seq = c.Seq + 10
	fence := time.Now().Add(500 * time.Millisecond)
	out, err = f.inv.RestoreSale(f.ctx, s, []domain.Order{order(a, domain.OrderConfirmed), order(lost, domain.OrderConfirmed)},
		ports.HighWater{Seq: lost.Seq, OrderID: lost.OrderID}, fence)
	if err != nil || !out.Restored {
		t.Fatalf("RestoreSale behind the orders = %+v, %v; want it rebuilt", out, err)
	}
	// a (2) + lost (5) + b (1) = 8, c (3) would make 11, dave's "not-fenced" (1) makes 9.
	if inv := out.Inventory; inv.Sold != 9 || inv.Remaining != 1 || inv.Pending != 2 || inv.RolledBack || inv.Seq <= lost.Seq {
		t.Fatalf("rebuilt inventory %+v; want 9 sold, 1 left, 2 pending, numbered above %d", inv, lost.Seq)
	}
	f.rebuilt(s)
	if !slices.Equal(out.Dropped, []uuid.UUID{c.OrderID}) {
		t.Fatalf("dropped %v, want only the newest pending reservation %s", out.Dropped, c.OrderID)
	}
	for id, want := range map[uuid.UUID]domain.OrderStatus{a.OrderID: domain.OrderConfirmed, b.OrderID: domain.OrderPending,
		c.OrderID: domain.OrderFailed, lost.OrderID: domain.OrderConfirmed} {
		if got := f.status(s, id); got != want {
			t.Fatalf("order %s is %q after the rebuild, want %q", id, got, want)
		}
	}
	if got := f.awaited(s); len(got) != 2 || !slices.Contains(got, b.OrderID) {
		t.Fatalf("awaited after the rebuild: %v, want b and dave's pending order", got)
	}
	// The lost order's key names it again; new purchases wait for the fence, then are numbered on.
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, dave, 5, "lost"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != lost.OrderID {
		t.Fatalf("Reserve with the lost order's key = %+v, %v; want order %s as a duplicate", res, err, lost.OrderID)
	}
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, carol, 1, "new")); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Reserve while fenced: %v, want ErrUnavailable", err)
	}
	waitPast(t, fence)
	if got := f.boughtBy(s, alice, bob, carol, dave); !slices.Equal(got, []int{2, 1, 0, 6}) {
		t.Fatalf("units per buyer after the rebuild %v, want [2 1 0 6]", got)
	}
	if r := f.reserve(s, carol, 1, "new"); r.Seq <= lost.Seq || (!sharded && r.Seq <= out.Inventory.Seq) {
		t.Fatalf("number after the rebuild %d, want above %d", r.Seq, out.Inventory.Seq)
	}
}

// testFence: a fenced sale refuses new purchases until the fence (a retried key still finds its
// order); an earlier fence does not shorten a later one; an unknown sale is left alone.
func testFence(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(5, 2)
	user := uuid.New()
	first := f.reserve(s, user, 1, "before")
	fence := time.Now().Add(600 * time.Millisecond)
	if err := f.inv.Fence(f.ctx, s.TenantID, s.ID, fence); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if err := f.inv.Fence(f.ctx, s.TenantID, s.ID, time.Now()); err != nil {
		t.Fatalf("Fence, earlier: %v", err)
	}
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "new")); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Reserve while fenced: %v, want ErrUnavailable", err)
	}
	if res, err := f.inv.Reserve(f.ctx, f.reservation(s, user, 1, "before")); err != nil || res.Reservation.OrderID != first.OrderID {
		t.Fatalf("Reserve with a used key while fenced = %+v, %v; want order %s", res, err, first.OrderID)
	}
	if err := f.inv.Fence(f.ctx, s.TenantID, uuid.New(), fence); err != nil {
		t.Fatalf("Fence of an unknown sale: %v", err)
	}
	waitPast(t, fence)
	f.reserve(s, uuid.New(), 1, "after")
}

func testReservationNode(t *testing.T, newFixture func(t *testing.T) *fixture) {
	f := newFixture(t)
	s := f.liveSale(5, 2)
	r := f.reservation(s, uuid.New(), 1, "k")
	r.Node = "api-7f3a"
	res, err := f.inv.Reserve(f.ctx, r)
	if err != nil || res.Reservation.Node != "api-7f3a" {
		t.Fatalf("Reserve = %+v, %v; want the accepting node recorded", res, err)
	}
	if got, ok, err := f.inv.Reservation(f.ctx, s.TenantID, s.ID, r.OrderID); err != nil || !ok || got.Node != "api-7f3a" {
		t.Fatalf("Reservation = %+v, %v, %v; want node api-7f3a", got, ok, err)
	}
	awaited, err := f.inv.AwaitedReservations(f.ctx, s.TenantID, s.ID, time.Now().Add(time.Hour), 0)
	if err != nil || len(awaited) != 1 || awaited[0].Node != "api-7f3a" {
		t.Fatalf("AwaitedReservations = %+v, %v; want the node on it", awaited, err)
	}
}
