package redis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// roundTrips counts the client's round trips to Redis: one per command sent alone, one per
// pipeline.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// A purchase takes the edge's checks (the session, the rate limit), the
// claim, the reservation and its recorded answer in one round trip; a refusal by either check
// takes nothing and leaves the key free; a replay is one round trip too, and so is the lookup
// of a sold-out sale's purchase with its session. (On a Cluster the same answers; the round
// trips are counted on a single Redis.)
func TestPurchaseTakesTheEdgesChecksInOneRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	trips := &roundTrips{}
	f.rdb.AddHook(trips)
	sessions := redisadapter.NewSessions(f.rdb, f.prefix)
	purchases := redisadapter.NewPurchases(f.inv, redisadapter.Wait{})
	if !purchases.GateInPurchase() {
		t.Fatal("the purchase store does not take the edge's checks")
	}
	// On a Cluster a purchase sends to the claim's node and the sale's at once, and a refusal
	// that frees the key (the rate limit, a revoked session) gives its claim back after: the
	// round trips are counted on a single Redis only.
	_, cluster := f.rdb.(*goredis.ClusterClient)
	one := func(n int64) bool { return cluster || n == 1 }
	s := f.liveSale(10, 10)
	user, session := uuid.New(), uuid.New()
	if err := sessions.CreateSession(f.ctx, domain.Session{ID: session, TenantID: f.tenant, UserID: user}, "hash", time.Hour); err != nil {
		t.Fatal(err)
	}
	gate := ports.PurchaseGate{SessionID: session, RateKey: "purchase:192.0.2.1", PerMinute: 3}
	purchase := func(key string, qty int) ports.Purchase {
		return ports.Purchase{Scope: ports.IdempotencyScope{TenantID: f.tenant, UserID: user, Key: key}, Fingerprint: "fp-" + key,
			Lease: 5 * time.Second, TTL: time.Hour, Gate: gate, Reservation: f.reservation(s, user, qty, key)}
	}
	buy := func(p ports.Purchase) (ports.PurchaseOutcome, int64, error) {
		t.Helper()
		before := trips.n.Load()
		out, err := purchases.Purchase(f.ctx, p)
		return out, trips.n.Load() - before, err
	}
	first := purchase("k1", 2)
	out, _, err := buy(first) // perhaps loading the script too: not counted
	if err != nil || !out.Recorded || out.Reserved.Reservation.OrderID != first.Reservation.OrderID {
		t.Fatalf("Purchase = %+v, %v; want accepted and recorded", out, err)
	}
	if out.Rate == nil || !out.Rate.Allowed || out.Rate.Remaining != 2 || out.Rate.ResetAfter <= 0 {
		t.Fatalf("rate decision = %+v, want allowed with 2 left", out.Rate)
	}
	out, trips1, err := buy(purchase("k2", 1))
	if err != nil || out.Rate == nil || out.Rate.Remaining != 1 || !one(trips1) {
		t.Fatalf("second Purchase = %+v (rate %+v), %v in %d round trips; want accepted, 1 left, in 1", out, out.Rate, err, trips1)
	}
	out, trips1, err = buy(first) // the replay
	if err != nil || out.Known == nil || !out.Known.Done || out.Known.Outcome.Order == nil ||
		out.Known.Outcome.Order.ID != first.Reservation.OrderID || !one(trips1) {
		t.Fatalf("replay = %+v, %v in %d round trips; want the recorded order in 1", out, err, trips1)
	}

	limited := purchase("k3", 1)
	out, trips1, err = buy(limited)
	if !errors.Is(err, domain.ErrRateLimited) || out.Rate == nil || out.Rate.Allowed || out.Rate.RetryAfter <= 0 || !one(trips1) {
		t.Fatalf("fourth Purchase in a minute = %+v (rate %+v), %v in %d round trips; want ErrRateLimited in 1", out, out.Rate, err, trips1)
	}
	if got, _, _ := f.inv.Inventory(f.ctx, f.tenant, s.ID); got.Remaining != 7 {
		t.Fatalf("inventory after a rate-limited purchase = %+v, want 7 left", got)
	}
	if rec, ok, err := purchases.Lookup(f.ctx, limited.Scope, limited.Reservation.SaleID, session); err != nil || ok {
		t.Fatalf("key of a rate-limited purchase = %+v, %v, %v; want free", rec, ok, err)
	}

	if err := sessions.RevokeSession(f.ctx, session); err != nil {
		t.Fatal(err)
	}
	gate.PerMinute = 0
	ended := purchase("k4", 1)
	out, trips1, err = buy(ended)
	if !errors.Is(err, domain.ErrUnauthenticated) || out.Known != nil || !one(trips1) {
		t.Fatalf("Purchase with a revoked session = %+v, %v in %d round trips; want ErrUnauthenticated in 1", out, err, trips1)
	}
	if got, _, _ := f.inv.Inventory(f.ctx, f.tenant, s.ID); got.Remaining != 7 {
		t.Fatalf("inventory after a revoked session's purchase = %+v, want 7 left", got)
	}
	if _, _, err := purchases.Lookup(f.ctx, first.Scope, first.Reservation.SaleID, session); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("Lookup with a revoked session: %v, want ErrUnauthenticated", err)
	}
	before := trips.n.Load()
	rec, ok, err := purchases.Lookup(f.ctx, first.Scope, first.Reservation.SaleID, uuid.Nil)
	if err != nil || !ok || !rec.Done || rec.Outcome.Order == nil || rec.Outcome.Order.ID != first.Reservation.OrderID ||
		!one(trips.n.Load()-before) {
		t.Fatalf("Lookup = %+v, %v, %v; want the recorded order in 1 round trip", rec, ok, err)
	}
	if rec, ok, err := purchases.Lookup(f.ctx, ended.Scope, ended.Reservation.SaleID, uuid.Nil); err != nil || ok {
		t.Fatalf("key of a revoked session's purchase = %+v, %v, %v; want free", rec, ok, err)
	}
}

// A refusal worth replaying is recorded by the reservation itself, in its one round trip, and
// replayed with the detail it was given; a refusal a retry may not meet (not started) is not.
func TestPurchaseRecordsItsRefusalInItsRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	trips := &roundTrips{}
	f.rdb.AddHook(trips)
	purchases := redisadapter.NewPurchases(f.inv, redisadapter.Wait{})
	_, cluster := f.rdb.(*goredis.ClusterClient)
	s := f.liveSale(3, 2)
	user := uuid.New()
	p := ports.Purchase{Scope: ports.IdempotencyScope{TenantID: f.tenant, UserID: user, Key: "over"}, Fingerprint: "fp",
		Lease: 5 * time.Second, TTL: time.Hour, Reservation: f.reservation(s, user, 3, "over")}
	if _, err := purchases.Purchase(f.ctx, p); err != nil && !errors.Is(err, domain.ErrPurchaseLimitExceeded) { // load the script
		t.Fatal(err)
	}
	p.Scope.Key, p.Reservation.IdempotencyKey = "over-2", "over-2"
	before := trips.n.Load()
	_, err := purchases.Purchase(f.ctx, p)
	var first *domain.Error
	if !errors.As(err, &first) || first.Code != domain.ErrPurchaseLimitExceeded.Code || (!cluster && trips.n.Load()-before != 1) {
		t.Fatalf("Purchase over the limit: %v in %d round trips, want purchase-limit-exceeded in 1", err, trips.n.Load()-before)
	}
	p.Reservation.OrderID = uuid.New()
	out, err := purchases.Purchase(f.ctx, p)
	if err != nil || out.Known == nil || !out.Known.Done || out.Known.Outcome.ErrCode != first.Code || out.Known.Outcome.ErrDetail != first.Detail {
		t.Fatalf("replay of a refusal = %+v, %v; want %q (%s)", out.Known, err, first.Code, first.Detail)
	}

	later := domain.Sale{ID: uuid.New(), TenantID: f.tenant, Name: "later", PriceCents: 100, Currency: "EUR",
		TotalStock: 5, PerUserLimit: 1, StartsAt: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)}
	later.EndsAt = later.StartsAt.Add(time.Hour)
	if _, err := f.inv.SyncSale(f.ctx, later, 0); err != nil {
		t.Fatal(err)
	}
	early := ports.Purchase{Scope: ports.IdempotencyScope{TenantID: f.tenant, UserID: user, Key: "early"}, Fingerprint: "fp",
		Lease: 5 * time.Second, TTL: time.Hour, Reservation: f.reservation(later, user, 1, "early")}
	if _, err := purchases.Purchase(f.ctx, early); !errors.Is(err, domain.ErrSaleNotStarted) {
		t.Fatalf("Purchase before the start: %v, want not started", err)
	}
	if rec, ok, err := purchases.Lookup(f.ctx, early.Scope, early.Reservation.SaleID, uuid.Nil); err != nil || ok {
		t.Fatalf("key of a purchase before the start = %+v, %v, %v; want free", rec, ok, err)
	}
}

// A purchase that took stock but whose answer was lost frees its claim (the caller's Forget
// after the error); a retry of it in a sale now known sold out looks the key up, and finds the
// order in the sale, not a free key: the buyer is answered the order, not "sold out".
func TestLookupFindsTheOrderOfAFreedClaimInTheSale(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	purchases := redisadapter.NewPurchases(f.inv, redisadapter.Wait{})
	s := f.liveSale(1, 1)
	user := uuid.New()
	p := ports.Purchase{Scope: ports.IdempotencyScope{TenantID: f.tenant, UserID: user, Key: "lost-answer"}, Fingerprint: "fp",
		Lease: 5 * time.Second, TTL: time.Hour, Reservation: f.reservation(s, user, 1, "lost-answer")}
	if _, err := purchases.Purchase(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := purchases.Forget(f.ctx, p.Scope); err != nil { // the answer was lost: the claim freed
		t.Fatal(err)
	}
	rec, ok, err := purchases.Lookup(f.ctx, p.Scope, s.ID, uuid.Nil)
	if err != nil || !ok || !rec.Done || rec.Outcome.Order == nil || rec.Outcome.Order.ID != p.Reservation.OrderID {
		t.Fatalf("Lookup of a freed claim = %+v, %v, %v; want the order %s from the sale", rec, ok, err, p.Reservation.OrderID)
	}
	other := p
	other.Scope.Key, other.Reservation.IdempotencyKey = "never-used", "never-used"
	if rec, ok, err := purchases.Lookup(f.ctx, other.Scope, s.ID, uuid.Nil); err != nil || ok {
		t.Fatalf("Lookup of a key never used = %+v, %v, %v; want free", rec, ok, err)
	}
}
