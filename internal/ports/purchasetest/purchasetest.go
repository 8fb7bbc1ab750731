// Package purchasetest is the contract of ports.PurchaseStore: the idempotency claim and the
// reservation as one step. Every implementation runs it against a real backend (Redis, the
// PostgreSQL baseline) or as it is (the in-memory store), through the ports only.
//
// What it holds them to: a free key claims and reserves; a key in use (in flight, completed with
// an order or a refusal, or used for another sale) takes nothing, whatever the stock; a refusal
// keeps the claim; an unknown sale leaves the key free; Forget frees a key; a lease and a TTL
// end; racing requests with one key take the stock once; Lookup reads a key's record and
// claims nothing. A store that records its answers itself (PurchaseOutcome.Recorded) holds the
// final answer where another holds the claim in flight, for Purchase.TTL.
package purchasetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Store is one store under test: its inventory (to load sales and read stock) and its
// purchases, on the same data.
type Store struct {
	Inventory ports.InventoryStore
	Purchases ports.PurchaseStore
}

// Run runs the contract against the stores newStore returns, one call per case. The cases run
// in parallel, each with its own tenant and sales, so the stores may share one backend.
func Run(t *testing.T, newStore func(t *testing.T) Store) { RunSharded(t, newStore, 0) }

// RunSharded runs the contract with every sale split into shards (domain.Sale.Shards), for a
// store that shards sales. The contract is the same.
func RunSharded(t *testing.T, newStore func(t *testing.T) Store, shards int) {
	cases := []struct {
		name string
		run  func(f *fixture)
	}{
		{"FreeKeyReserves", testFreeKeyReserves},
		{"KeyInFlightTakesNothing", testKeyInFlight},
		{"CompletedKeyReplaysAndTakesNothing", testCompletedKey},
		{"RefusedKeyTakesNothingOnceStockIsBack", testRefusedKeyTakesNothing},
		{"KeyOfAnotherSaleTakesNothing", testKeyOfAnotherSale},
		{"RefusalKeepsTheClaim", testRefusalKeepsTheClaim},
		{"UnknownSaleLeavesTheKeyFree", testUnknownSale},
		{"ForgetFreesTheKey", testForget},
		{"LeaseAndTTLEnd", testExpiry},
		{"KeysAreScopedByTenantAndUser", testScope},
		{"RacingRequestsWithOneKeyTakeOnce", testRace},
		{"LookupReadsTheRecordWithoutClaiming", testLookup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t)
			c.run(&fixture{t: t, ctx: context.Background(), Store: st, tenant: uuid.New(), user: uuid.New(), shards: shards})
		})
	}
}

type fixture struct {
	Store
	t      *testing.T
	ctx    context.Context
	tenant uuid.UUID
	user   uuid.UUID
	shards int
	// recorded: the store answered the last purchase with its answer recorded.
	recorded bool
}

const lease, ttl = 30 * time.Second, time.Hour

// sale loads a sale of the fixture's tenant that started a minute ago and lasts an hour.
func (f *fixture) sale(total, limit int) domain.Sale {
	f.t.Helper()
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	s := domain.Sale{ID: uuid.New(), TenantID: f.tenant, Name: "sale", PriceCents: 1999, Currency: "EUR",
		TotalStock: total, PerUserLimit: limit, StartsAt: start, EndsAt: start.Add(time.Hour), Shards: f.shards}
	if _, err := f.Inventory.SyncSale(f.ctx, s, 0); err != nil {
		f.t.Fatalf("SyncSale: %v", err)
	}
	return s
}

// purchase is a purchase of qty in s by the fixture's user with key, for fingerprint.
func (f *fixture) purchase(s domain.Sale, key, fingerprint string, qty int) ports.Purchase {
	return ports.Purchase{
		Scope:       ports.IdempotencyScope{TenantID: f.tenant, UserID: f.user, Key: key},
		Fingerprint: fingerprint,
		Lease:       lease,
		TTL:         ttl,
		Reservation: domain.Reservation{OrderID: uuid.New(), TenantID: f.tenant, SaleID: s.ID, UserID: f.user,
			Quantity: qty, IdempotencyKey: key},
	}
}

// reserved runs p and fails unless it reserved a new reservation.
func (f *fixture) reserved(p ports.Purchase) domain.Reservation {
	f.t.Helper()
	out, err := f.Purchases.Purchase(f.ctx, p)
	if err != nil || out.Known != nil || out.Reserved.Duplicate || out.Reserved.Reservation.OrderID != p.Reservation.OrderID {
		f.t.Fatalf("Purchase(key %q) = %+v (known %+v), %v; want a new reservation of order %s",
			p.Scope.Key, out.Reserved, out.Known, err, p.Reservation.OrderID)
	}
	f.recorded = out.Recorded
	return out.Reserved.Reservation
}

// known runs p and fails unless it found the key in use; it returns the key's record.
func (f *fixture) known(p ports.Purchase) ports.IdempotencyRecord {
	f.t.Helper()
	out, err := f.Purchases.Purchase(f.ctx, p)
	if err != nil || out.Known == nil {
		f.t.Fatalf("Purchase(key %q) = %+v, %v; want the key's record", p.Scope.Key, out, err)
	}
	return *out.Known
}

// remaining checks the stock left in s and the units the user holds there.
func (f *fixture) remaining(s domain.Sale, remaining, bought int) {
	f.t.Helper()
	inv, ok, err := f.Inventory.Inventory(f.ctx, s.TenantID, s.ID)
	if err != nil || !ok || inv.Remaining != remaining || inv.Sold != s.TotalStock-remaining {
		f.t.Fatalf("inventory = %+v (ok %v, %v), want %d remaining, %d sold", inv, ok, err, remaining, s.TotalStock-remaining)
	}
	awaited, err := f.Inventory.AwaitedReservations(f.ctx, s.TenantID, s.ID, time.Now().Add(time.Hour), 0)
	if err != nil {
		f.t.Fatal(err)
	}
	held := 0
	for _, r := range awaited {
		if r.UserID == f.user {
			held += r.Quantity
		}
	}
	if held != bought {
		f.t.Fatalf("user holds %d units awaited, want %d", held, bought)
	}
}

// absent fails if the store holds a reservation for orderID in s.
func (f *fixture) absent(s domain.Sale, orderID uuid.UUID) {
	f.t.Helper()
	if r, ok, err := f.Inventory.Reservation(f.ctx, s.TenantID, s.ID, orderID); err != nil || ok {
		f.t.Fatalf("Reservation(%s) = %+v, %v, %v; want none", orderID, r, ok, err)
	}
}

func (f *fixture) complete(p ports.Purchase, outcome ports.PlaceOrderOutcome, ttl time.Duration) {
	f.t.Helper()
	err := f.Purchases.Complete(f.ctx, p.Scope, ports.IdempotencyRecord{Fingerprint: p.Fingerprint, Done: true, Outcome: outcome}, ttl)
	if err != nil {
		f.t.Fatalf("Complete: %v", err)
	}
}

func testFreeKeyReserves(f *fixture) {
	s := f.sale(10, 3)
	p := f.purchase(s, "k1", "fp", 2)
	r := f.reserved(p)
	if r.Quantity != 2 || r.Status != domain.OrderPending || r.UnitPriceCents != 1999 || r.Currency != "EUR" || r.IdempotencyKey != "k1" {
		f.t.Fatalf("reservation = %+v", r)
	}
	f.remaining(s, 8, 2)
}

func testKeyInFlight(f *fixture) {
	s := f.sale(10, 3)
	first := f.purchase(s, "k1", "fp", 2)
	r := f.reserved(first)
	for _, fp := range []string{"fp", "other"} {
		again := f.purchase(s, "k1", fp, 2)
		rec := f.known(again)
		switch {
		case rec.Fingerprint != "fp":
			f.t.Fatalf("record = %+v, want the first request's", rec)
		case f.recorded && fp == "fp" && (!rec.Done || rec.Outcome.Order == nil || rec.Outcome.Order.ID != r.OrderID ||
			rec.Outcome.Order.Status != domain.OrderPending || rec.Outcome.Order.Quantity != 2 || rec.Outcome.Order.AmountCents != 2*1999):
			f.t.Fatalf("record = %+v (order %+v), want its recorded answer: order %s, pending", rec, rec.Outcome.Order, r.OrderID)
		case rec.Done && (!f.recorded || fp != "fp") && rec.Outcome.Order == nil:
			f.t.Fatalf("record = %+v, want the first request's, in flight or answered", rec)
		case !f.recorded && rec.Done:
			f.t.Fatalf("record = %+v, want the first request's, in flight", rec)
		}
		f.absent(s, again.Reservation.OrderID)
	}
	f.remaining(s, 8, 2)
}

func testCompletedKey(f *fixture) {
	s := f.sale(10, 3)
	p := f.purchase(s, "k1", "fp", 1)
	r := f.reserved(p)
	order := r.Order()
	f.complete(p, ports.PlaceOrderOutcome{Order: &order}, ttl)
	again := f.purchase(s, "k1", "fp", 1)
	rec := f.known(again)
	if !rec.Done || rec.Fingerprint != "fp" || rec.Outcome.Order == nil || rec.Outcome.Order.ID != order.ID ||
		rec.Outcome.Order.Quantity != 1 || rec.Outcome.Order.AmountCents != 1999 {
		f.t.Fatalf("record = %+v (order %+v), want the completed order %s", rec, rec.Outcome.Order, order.ID)
	}
	f.absent(s, again.Reservation.OrderID)
	f.remaining(s, 9, 1)

	f.complete(p, ports.PlaceOrderOutcome{Order: &order}, ttl) // (again: the same answer)
}

// testRefusedKeyTakesNothing: a key answered with a refusal replays it, and takes nothing even
// once stock is back.
func testRefusedKeyTakesNothing(f *fixture) {
	s := f.sale(1, 1)
	other := *f
	other.user = uuid.New()
	taken := other.reserved(other.purchase(s, "theirs", "fp", 1))
	p := f.purchase(s, "k1", "fp", 1)
	if _, err := f.Purchases.Purchase(f.ctx, p); !errors.Is(err, domain.ErrSoldOut) {
		f.t.Fatalf("Purchase in a sold-out sale: %v, want ErrSoldOut", err)
	}
	f.complete(p, ports.PlaceOrderOutcome{ErrCode: domain.ErrSoldOut.Code, ErrDetail: "none left"}, ttl)
	if released, err := f.Inventory.Release(f.ctx, taken); err != nil || !released {
		f.t.Fatalf("Release: %v, %v", released, err)
	}
	retry := f.purchase(s, "k1", "fp", 1)
	rec := f.known(retry)
	if !rec.Done || rec.Outcome.Order != nil || rec.Outcome.ErrCode != domain.ErrSoldOut.Code || rec.Outcome.ErrDetail != "none left" {
		f.t.Fatalf("record = %+v, want the stored refusal", rec)
	}
	f.absent(s, retry.Reservation.OrderID)
	f.remaining(s, 1, 0)
}

func testKeyOfAnotherSale(f *fixture) {
	a, b := f.sale(10, 3), f.sale(10, 3)
	p := f.purchase(a, "k1", "fp-a", 1)
	r := f.reserved(p)
	order := r.Order()
	f.complete(p, ports.PlaceOrderOutcome{Order: &order}, ttl)
	other := f.purchase(b, "k1", "fp-b", 1)
	if rec := f.known(other); rec.Fingerprint != "fp-a" {
		f.t.Fatalf("record = %+v, want sale a's", rec)
	}
	f.absent(b, other.Reservation.OrderID)
	f.remaining(b, 10, 0)
	f.remaining(a, 9, 1)
}

func testRefusalKeepsTheClaim(f *fixture) {
	s := f.sale(1, 1)
	f.reserved(f.purchase(s, "k1", "fp1", 1))
	p := f.purchase(s, "k2", "fp2", 1)
	out, err := f.Purchases.Purchase(f.ctx, p)
	if !errors.Is(err, domain.ErrSoldOut) || out.Known != nil {
		f.t.Fatalf("Purchase in a sold-out sale = %+v, %v, want ErrSoldOut", out, err)
	}
	rec := f.known(f.purchase(s, "k2", "fp2", 1))
	switch {
	case rec.Fingerprint != "fp2":
		f.t.Fatalf("record after a refusal = %+v, want the refused request's", rec)
	case out.Recorded && (!rec.Done || rec.Outcome.ErrCode != domain.ErrSoldOut.Code || rec.Outcome.Order != nil):
		f.t.Fatalf("record after a refusal = %+v, want the refusal recorded", rec)
	case !out.Recorded && rec.Done:
		f.t.Fatalf("record after a refusal = %+v, want the claim in flight", rec)
	}
	f.remaining(s, 0, 1)
}

func testUnknownSale(f *fixture) {
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	s := domain.Sale{ID: uuid.New(), TenantID: f.tenant, Name: "sale", PriceCents: 1999, Currency: "EUR",
		TotalStock: 5, PerUserLimit: 2, StartsAt: start, EndsAt: start.Add(time.Hour), Shards: f.shards}
	p := f.purchase(s, "k1", "fp", 1)
	out, err := f.Purchases.Purchase(f.ctx, p)
	if !errors.Is(err, domain.ErrSaleNotFound) || out.Known != nil {
		f.t.Fatalf("Purchase in an unknown sale = %+v, %v, want ErrSaleNotFound", out, err)
	}
	if _, err := f.Inventory.SyncSale(f.ctx, s, 0); err != nil {
		f.t.Fatal(err)
	}
	f.reserved(p) // the same key, free again
	f.remaining(s, 4, 1)
}

func testForget(f *fixture) {
	s := f.sale(10, 3)
	p := f.purchase(s, "k1", "fp", 1)
	if _, err := f.Purchases.Purchase(f.ctx, p); err != nil {
		f.t.Fatal(err)
	}
	if err := f.Purchases.Forget(f.ctx, p.Scope); err != nil {
		f.t.Fatalf("Forget: %v", err)
	}
	// Free again: the reservation the key holds in the sale answers as a duplicate.
	again := f.purchase(s, "k1", "fp", 1)
	out, err := f.Purchases.Purchase(f.ctx, again)
	if err != nil || out.Known != nil || !out.Reserved.Duplicate || out.Reserved.Reservation.OrderID != p.Reservation.OrderID {
		f.t.Fatalf("Purchase after Forget = %+v, %v, want the first reservation as a duplicate", out, err)
	}
	if err := f.Purchases.Forget(f.ctx, ports.IdempotencyScope{TenantID: f.tenant, UserID: f.user, Key: "never-used"}); err != nil {
		f.t.Fatalf("Forget(unknown key): %v", err)
	}
	f.remaining(s, 9, 1)
}

func testExpiry(f *fixture) {
	s := f.sale(10, 5)
	short := f.purchase(s, "lease", "fp", 1)
	short.Lease = 300 * time.Millisecond
	short.TTL = 300 * time.Millisecond // a store that records its answer keeps it this long
	f.reserved(short)
	done := f.purchase(s, "ttl", "fp", 1)
	r := f.reserved(done)
	order := r.Order()
	f.complete(done, ports.PlaceOrderOutcome{Order: &order}, 300*time.Millisecond)
	f.known(f.purchase(s, "lease", "fp", 1))
	f.known(f.purchase(s, "ttl", "fp", 1))
	time.Sleep(1200 * time.Millisecond)
	for _, key := range []string{"lease", "ttl"} {
		out, err := f.Purchases.Purchase(f.ctx, f.purchase(s, key, "fp", 1))
		if err != nil || out.Known != nil || !out.Reserved.Duplicate {
			f.t.Fatalf("Purchase(%s) after expiry = %+v, %v, want the key free and its reservation a duplicate", key, out, err)
		}
	}
	f.remaining(s, 8, 2)
}

func testScope(f *fixture) {
	s := f.sale(10, 3)
	f.reserved(f.purchase(s, "k1", "fp", 1))
	other := *f
	other.user = uuid.New()
	other.reserved(other.purchase(s, "k1", "fp", 1))
	f.remaining(s, 8, 1)
}

func testRace(f *fixture) {
	s := f.sale(100, 1)
	const n = 30
	var wg sync.WaitGroup
	outs := make([]ports.PurchaseOutcome, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			outs[i], errs[i] = f.Purchases.Purchase(f.ctx, f.purchase(s, "same", "fp", 1))
		})
	}
	wg.Wait()
	orders := map[uuid.UUID]bool{}
	for i := range n {
		if errs[i] != nil {
			f.t.Fatalf("racer %d: %v", i, errs[i])
		}
		if outs[i].Known == nil {
			orders[outs[i].Reserved.Reservation.OrderID] = true
		}
	}
	if len(orders) != 1 {
		f.t.Fatalf("%d racers reserved orders %v, want exactly one order", n, orders)
	}
	f.remaining(s, 99, 1)
}

// testLookup: a free key is looked up as free and stays free; a claimed key reads as in flight,
// a completed one as its answer.
func testLookup(f *fixture) {
	s := f.sale(10, 3)
	p := f.purchase(s, "k1", "fp", 1)
	lookup := func() (ports.IdempotencyRecord, bool) {
		f.t.Helper()
		rec, ok, err := f.Purchases.Lookup(f.ctx, p.Scope, p.Reservation.SaleID, uuid.Nil)
		if err != nil {
			f.t.Fatalf("Lookup: %v", err)
		}
		return rec, ok
	}
	if rec, ok := lookup(); ok {
		f.t.Fatalf("a free key looks up as %+v", rec)
	}
	r := f.reserved(p) // the lookup claimed nothing
	if rec, ok := lookup(); !ok || rec.Done != f.recorded || rec.Fingerprint != "fp" {
		f.t.Fatalf("a claimed key looks up as %+v (%v), want in flight (or done, if recorded: %v)", rec, ok, f.recorded)
	}
	order := r.Order()
	f.complete(p, ports.PlaceOrderOutcome{Order: &order}, ttl)
	if rec, ok := lookup(); !ok || !rec.Done || rec.Outcome.Order == nil || rec.Outcome.Order.ID != order.ID {
		f.t.Fatalf("a completed key looks up as %+v (%v), want order %s", rec, ok, order.ID)
	}
	refused := f.purchase(s, "k2", "fp", 1)
	f.complete(refused, ports.PlaceOrderOutcome{ErrCode: domain.ErrSoldOut.Code, ErrDetail: "gone"}, ttl)
	if rec, ok, err := f.Purchases.Lookup(f.ctx, refused.Scope, refused.Reservation.SaleID, uuid.Nil); err != nil || !ok || rec.Outcome.ErrCode != domain.ErrSoldOut.Code {
		f.t.Fatalf("a refused key looks up as %+v (%v, %v)", rec, ok, err)
	}
}
