package redis_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// fixture is one test's private inventory on the shared Redis.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	rdb    *goredis.Client
	prefix string
	inv    *redisadapter.Inventory
	tenant uuid.UUID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	r := testutil.NewRedis(t)
	return &fixture{
		t: t, ctx: context.Background(), rdb: r.Client, prefix: r.Prefix,
		inv: redisadapter.NewInventory(r.Client, r.Prefix), tenant: uuid.New(),
	}
}

// newSale describes a sale of the fixture's tenant; it is not synced.
func (f *fixture) newSale(total, limit int, startsIn, lasts time.Duration) domain.Sale {
	start := time.Now().Add(startsIn).UTC().Truncate(time.Millisecond)
	return domain.Sale{
		ID: uuid.New(), TenantID: f.tenant, Name: "sale", PriceCents: 1999, Currency: "EUR",
		TotalStock: total, PerUserLimit: limit, StartsAt: start, EndsAt: start.Add(lasts),
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

// stock checks the live inventory of s.
func (f *fixture) stock(s domain.Sale, total, remaining, sold int) {
	f.t.Helper()
	inv, ok, err := f.inv.Inventory(f.ctx, s.TenantID, s.ID)
	if err != nil || !ok {
		f.t.Fatalf("Inventory: ok=%v err=%v", ok, err)
	}
	// Pending units are always those of the reservations still awaited.
	awaited, err := f.inv.AwaitedReservations(f.ctx, s.TenantID, s.ID, time.Now().Add(time.Hour), 0)
	if err != nil {
		f.t.Fatalf("AwaitedReservations: %v", err)
	}
	pending := 0
	for _, r := range awaited {
		pending += r.Quantity
	}
	want := domain.Inventory{SaleID: s.ID, TenantID: s.TenantID, Total: total, Remaining: remaining, Sold: sold, Pending: pending}
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

// bought is the per-user counter the inventory keeps for the limit.
func (f *fixture) bought(s domain.Sale, user uuid.UUID) int {
	f.t.Helper()
	n, err := f.rdb.HGet(f.ctx, f.saleKey(s, "buyers"), user.String()).Int()
	if errors.Is(err, goredis.Nil) {
		return 0
	}
	if err != nil {
		f.t.Fatalf("read buyers: %v", err)
	}
	return n
}

// saleKey is the key layout documented in lua/reserve.lua.
func (f *fixture) saleKey(s domain.Sale, name string) string {
	return f.prefix + ":{" + s.TenantID.String() + ":" + s.ID.String() + "}:" + name
}

func sameIDs(got, want []uuid.UUID) bool {
	if len(got) != len(want) {
		return false
	}
	g := append([]uuid.UUID(nil), got...)
	w := append([]uuid.UUID(nil), want...)
	less := func(s []uuid.UUID) func(i, j int) bool {
		return func(i, j int) bool { return s[i].String() < s[j].String() }
	}
	sort.Slice(g, less(g))
	sort.Slice(w, less(w))
	for i := range g {
		if g[i] != w[i] {
			return false
		}
	}
	return true
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

func TestSyncSaleCreatesInventory(t *testing.T) {
	t.Parallel()
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

	// The hash holds exactly what the scripts need.
	h, err := f.rdb.HGetAll(f.ctx, f.saleKey(s, "inv")).Result()
	if err != nil {
		t.Fatal(err)
	}
	wantHash := map[string]string{
		"total": "50", "remaining": "50", "sold": "0", "pending": "0", "limit": "3",
		"starts": fmt.Sprint(s.StartsAt.UnixMilli()), "ends": fmt.Sprint(s.EndsAt.UnixMilli()),
		"price": "1999", "currency": "EUR",
	}
	if fmt.Sprint(h) != fmt.Sprint(wantHash) {
		t.Fatalf("inventory hash = %v, want %v", h, wantHash)
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
	// Another tenant does not see the sale.
	if _, ok, err := f.inv.Inventory(f.ctx, uuid.New(), s.ID); err != nil || ok {
		t.Fatalf("other tenant: ok=%v err=%v, want unknown", ok, err)
	}
}

func TestReserveOutcomes(t *testing.T) {
	t.Parallel()
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
		{name: "limit across several orders", total: 10, limit: 3, prior: []prior{{0, 2}, {0, 1}}, user: 0, qty: 1,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "1 more would exceed the per-user limit: 0 more allowed", wantRemaining: 7},
		{name: "limit partly used", total: 10, limit: 3, prior: []prior{{0, 2}}, user: 0, qty: 2,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "2 more would exceed the per-user limit: 1 more allowed", wantRemaining: 8},
		{name: "limit in one order", total: 10, limit: 3, user: 0, qty: 4,
			wantErr: domain.ErrPurchaseLimitExceeded, wantDetail: "4 more would exceed the per-user limit: 3 more allowed", wantRemaining: 10},
		{name: "other users do not count", total: 10, limit: 2, prior: []prior{{1, 2}, {2, 2}}, user: 0, qty: 2, wantRemaining: 4},
		{name: "sold out", total: 3, limit: 3, prior: []prior{{1, 3}}, user: 0, qty: 1,
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
					got.IdempotencyKey != "the-key" || got.Status != domain.OrderPending || res.Remaining != tc.wantRemaining {
					t.Fatalf("Reserve = %+v, want order %s qty %d pending, remaining %d", res, r.OrderID, tc.qty, tc.wantRemaining)
				}
				f.stock(s, tc.total, tc.wantRemaining, sold+tc.qty)
				if !sameIDs(f.awaited(s), append(priorIDs, r.OrderID)) {
					t.Fatalf("awaited = %v, want prior %v and %s", f.awaited(s), priorIDs, r.OrderID)
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
			if got, want := f.bought(s, users[tc.user]), boughtBy(tc.user, tc.prior); got != want {
				t.Fatalf("user bought %d, want %d", got, want)
			}
		})
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

func TestReserveDuplicateReturnsTheSameOrder(t *testing.T) {
	t.Parallel()
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
		if !res.Duplicate || res.Reservation != first || res.Remaining != 8 {
			t.Fatalf("duplicate Reserve = %+v, want duplicate of %+v with 8 remaining", res, first)
		}
	}
	// Even with another quantity the key stays bound to the first order.
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, alice, 1, "k1"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != first.OrderID || res.Reservation.Quantity != 2 {
		t.Fatalf("duplicate with other quantity = %+v, %v", res, err)
	}
	f.stock(s, 10, 8, 2)
	if got := f.bought(s, alice); got != 2 {
		t.Fatalf("alice bought %d, want 2", got)
	}
	if got := f.awaited(s); !sameIDs(got, []uuid.UUID{first.OrderID}) {
		t.Fatalf("awaited = %v, want only %s", got, first.OrderID)
	}

	// The same key by another user, or another key by the same user, is a new order.
	b := f.reserve(s, bob, 1, "k1")
	a2 := f.reserve(s, alice, 1, "k2")
	if b.OrderID == first.OrderID || a2.OrderID == first.OrderID {
		t.Fatalf("distinct requests share an order")
	}
	f.stock(s, 10, 6, 4)

	// A duplicate is recognised before the limit: alice is at 3 of 4, a replay of k1 (2 units)
	// still answers with the first order.
	res, err = f.inv.Reserve(f.ctx, f.reservation(s, alice, 2, "k1"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != first.OrderID {
		t.Fatalf("duplicate near the limit = %+v, %v", res, err)
	}
}

func TestReservationRecords(t *testing.T) {
	t.Parallel()
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
	}
	if r1 != want {
		t.Fatalf("reservation = %+v, want %+v", r1, want)
	}
	// Redis' clock, in milliseconds; same host, so a second of slack is plenty.
	if r1.CreatedAt.Before(before.Add(-time.Second)) || r1.CreatedAt.After(after.Add(time.Second)) {
		t.Fatalf("CreatedAt %v not within [%v, %v]", r1.CreatedAt, before, after)
	}
	if r1.CreatedAt.Location() != time.UTC || r1.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("CreatedAt %v is not UTC milliseconds", r1.CreatedAt)
	}

	// The price is copied at reservation time: a later price change leaves r1 alone.
	repriced := s
	repriced.PriceCents, repriced.Currency = 2500, "USD"
	f.sync(repriced, 0)
	r2 := f.reserve(s, user, 1, "k2")
	if r2.UnitPriceCents != 2500 || r2.Currency != "USD" {
		t.Fatalf("reservation after repricing: %d %s, want 2500 USD", r2.UnitPriceCents, r2.Currency)
	}
	got, ok, err := f.inv.Reservation(f.ctx, f.tenant, s.ID, r1.OrderID)
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

func TestAwaitedReservationsAndMarkConfirmed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.liveSale(10, 10)
	user := uuid.New()

	r1 := f.reserve(s, user, 1, "k1")
	// Let Redis' millisecond clock move on, so r2 is strictly younger than r1.
	testutil.WaitFor(t, 5*time.Second, "the clock to pass r1", func() bool {
		return time.Now().After(r1.CreatedAt.Add(20 * time.Millisecond))
	})
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
	if got, err := f.inv.AwaitedReservations(f.ctx, f.tenant, uuid.New(), time.Now().Add(time.Minute), 0); err != nil || len(got) != 0 {
		t.Fatalf("awaited of an unknown sale = %v, %v", got, err)
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
	// A confirmed reservation cannot be released.
	released, err := f.inv.Release(f.ctx, r2)
	if err != nil || released {
		t.Fatalf("Release(confirmed) = %v, %v, want false", released, err)
	}
	f.stock(s, 10, 7, 3)
	if st := f.status(s, r2.OrderID); st != domain.OrderConfirmed {
		t.Fatalf("r2 status %q after release attempt, want confirmed", st)
	}
	// Confirming an unknown order is harmless.
	if err := f.inv.MarkConfirmed(f.ctx, f.reservation(s, user, 1, "none")); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseGivesStockAndAllowanceBackOnce(t *testing.T) {
	t.Parallel()
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
	// An unknown order releases nothing.
	released, err = f.inv.Release(f.ctx, f.reservation(s, alice, 2, "ghost"))
	if err != nil || released {
		t.Fatalf("Release(unknown) = %v, %v", released, err)
	}
	f.stock(s, 5, 2, 3)
	// The duplicate of a released order's key answers with the failed order, taking nothing.
	res, err := f.inv.Reserve(f.ctx, f.reservation(s, alice, 2, "a1"))
	if err != nil || !res.Duplicate || res.Reservation.OrderID != a.OrderID || res.Reservation.Status != domain.OrderFailed {
		t.Fatalf("replay of released key = %+v, %v", res, err)
	}
	f.stock(s, 5, 2, 3)
}

func TestConcurrentReleaseReleasesOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.liveSale(10, 5)
	r := f.reserve(s, uuid.New(), 3, "k")
	f.stock(s, 10, 7, 3)

	const n = 50
	var wins sync.WaitGroup
	results := make(chan bool, n)
	for range n {
		wins.Go(func() {
			released, err := f.inv.Release(f.ctx, r)
			if err != nil {
				t.Error(err)
			}
			results <- released
		})
	}
	wins.Wait()
	close(results)
	count := 0
	for ok := range results {
		if ok {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d releases succeeded, want exactly 1", count)
	}
	f.stock(s, 10, 10, 0)
}

func TestRereserve(t *testing.T) {
	t.Parallel()

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
		want.Status = domain.OrderPending
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
		if again, err := f.inv.Rereserve(f.ctx, r); err != nil || again.Status != domain.OrderPending {
			t.Fatalf("Rereserve(pending) = %+v, %v", again, err)
		}
		f.stock(s, 5, 3, 2)
		if got := f.bought(s, user); got != 2 {
			t.Fatalf("bought %d after second Rereserve, want 2", got)
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
			wantErr: domain.ErrSoldOut, remaining: 0, sold: 4, wantStatus: domain.OrderFailed,
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
			wantErr: domain.ErrInsufficientStock, remaining: 1, sold: 3, wantStatus: domain.OrderFailed,
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
			wantErr: domain.ErrPurchaseLimitExceeded, remaining: 3, sold: 1, wantStatus: domain.OrderFailed,
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
			wantErr: domain.ErrOrderNotRetryable, remaining: 2, sold: 2, wantStatus: domain.OrderConfirmed,
		},
		{
			name: "unknown order",
			setup: func(f *fixture, s domain.Sale) domain.Reservation {
				return f.reservation(s, uuid.New(), 1, "k")
			},
			wantErr: domain.ErrOrderNotRetryable, remaining: 4, sold: 0,
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

func TestSyncSaleOnALiveSale(t *testing.T) {
	t.Parallel()
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
	hashBefore, err := f.rdb.HGetAll(f.ctx, f.saleKey(s, "inv")).Result()
	if err != nil {
		t.Fatal(err)
	}
	bad := s
	bad.TotalStock, bad.PerUserLimit, bad.PriceCents, bad.EndsAt = 2, 1, 1, s.EndsAt.Add(time.Hour)
	inv, err := f.inv.SyncSale(f.ctx, bad, 0)
	wantDomainErr(t, err, domain.ErrStockBelowSold)
	if inv != (domain.Inventory{}) {
		t.Fatalf("refused SyncSale returned %+v", inv)
	}
	hashAfter, err := f.rdb.HGetAll(f.ctx, f.saleKey(s, "inv")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(hashAfter) != fmt.Sprint(hashBefore) {
		t.Fatalf("refused SyncSale changed the inventory: %v -> %v", hashBefore, hashAfter)
	}
	f.stock(s, 8, 5, 3)

	// A changed limit applies at once: user has 3 of 5; lowered to 3 they can buy no more.
	s.PerUserLimit = 3
	f.sync(s, 0)
	if _, err := f.inv.Reserve(f.ctx, f.reservation(s, user, 1, "k2")); !errors.Is(err, domain.ErrPurchaseLimitExceeded) {
		t.Fatalf("Reserve after lowering the limit: %v", err)
	}
	s.PerUserLimit = 4
	f.sync(s, 0)
	f.reserve(s, user, 1, "k2")
	// A changed window applies at once too.
	s.StartsAt, s.EndsAt = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	f.sync(s, 0)
	_, err = f.inv.Reserve(f.ctx, f.reservation(s, uuid.New(), 1, "k3"))
	wantDomainErr(t, err, domain.ErrSaleNotStarted)
	f.stock(s, 8, 4, 4)
}

func TestSyncSaleSoldHint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	// The hint seeds the sold count of a new inventory (rebuilding it after Redis lost it).
	s := f.newSale(10, 5, -time.Minute, time.Hour)
	got := f.sync(s, 4)
	if want := (domain.Inventory{SaleID: s.ID, TenantID: f.tenant, Total: 10, Remaining: 6, Sold: 4}); got != want {
		t.Fatalf("SyncSale with hint = %+v, want %+v", got, want)
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
	wantDomainErr(t, err, domain.ErrStockBelowSold)
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

// TestConcurrentReserveNeverOversells: 2,000 reservations race for 100 units, 300 users with a
// limit of 2; every request is sent twice at once (a client retry), the pair sharing its key.
func TestConcurrentReserveNeverOversells(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t)
	const (
		stock, limit = 100, 2
		users        = 300
		requests     = 2000
	)
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
	out := make(chan outcome, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			j := i / 2 // requests 2j and 2j+1 are the same purchase
			user := j % users
			r := f.reservation(s, userIDs[user], 1, fmt.Sprintf("req-%d", j))
			<-start
			res, err := f.inv.Reserve(f.ctx, r)
			out <- outcome{req: i, user: user, res: res, err: err}
		})
	}
	close(start)
	wg.Wait()
	close(out)

	accepted := map[uuid.UUID]int{} // order -> user
	perUser := map[int]int{}
	byPurchase := map[int]uuid.UUID{} // purchase j -> order taken
	var dups []outcome
	soldOut, limited := 0, 0
	for o := range out {
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
	for u, n := range perUser {
		if n > limit {
			t.Errorf("user %d got %d units, limit %d", u, n, limit)
		}
		if got := f.bought(s, userIDs[u]); got != n {
			t.Errorf("user %d: inventory counts %d, accepted %d", u, got, n)
		}
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
}

// TestSaleKeysShareOneHashTag: each script touches one sale's keys only; they must share one
// {hash tag} (one cluster slot) and all live under the prefix.
func TestSaleKeysShareOneHashTag(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sales := []domain.Sale{f.liveSale(10, 5), f.liveSale(10, 5)}
	for _, s := range sales {
		r := f.reserve(s, uuid.New(), 1, "k1")
		f.reserve(s, uuid.New(), 1, "k2")
		if err := f.inv.MarkConfirmed(f.ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	keys := testutil.Keys(f.ctx, f.rdb, f.prefix+":*")
	tagRe := regexp.MustCompile(`\{[^}]*\}`)
	byTag := map[string][]string{}
	for _, k := range keys {
		if !strings.HasPrefix(k, f.prefix+":") {
			t.Errorf("key %q is outside the prefix %q", k, f.prefix)
		}
		tags := tagRe.FindAllString(k, -1)
		if len(tags) != 1 {
			t.Errorf("key %q has %d hash tags, want 1", k, len(tags))
			continue
		}
		byTag[tags[0]] = append(byTag[tags[0]], strings.TrimPrefix(k, f.prefix+":"+tags[0]+":"))
	}
	if len(byTag) != len(sales) {
		t.Fatalf("keys %v use %d hash tags, want one per sale (%d)", keys, len(byTag), len(sales))
	}
	for _, s := range sales {
		tag := "{" + f.tenant.String() + ":" + s.ID.String() + "}"
		names := byTag[tag]
		sort.Strings(names)
		if want := []string{"awaited", "buyers", "inv", "keys", "res"}; fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("sale %s has keys %v under %s, want %v", s.ID, names, tag, want)
		}
	}
}
