package redis_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// TestPurchaseSpendsTheAdmissionWithTheStock: on a sale with a waiting room, the purchase itself
// checks the buyer's admission and spends it only with the stock it takes, in its one round
// trip: a purchase refused by the rate limit, by the stock or by the limit keeps the admission
// for the next try; a buyer without one is refused and leaves the key free; a replay needs none;
// the spent admission stops holding its share at once (its reservation is in the same step).
// A sharded sale spends it too (on a Cluster, just before, when the buyer's shard is not in the
// room's slot).
func TestPurchaseSpendsTheAdmissionWithTheStock(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			t.Parallel()
			testPurchaseSpendsTheAdmission(t, shards)
		})
	}
}

func testPurchaseSpendsTheAdmission(t *testing.T, shards int) {
	f := newFixture(t)
	trips := &roundTrips{}
	f.rdb.AddHook(trips)
	_, cluster := f.rdb.(*goredis.ClusterClient)
	purchases := redisadapter.NewPurchases(f.inv, redisadapter.Wait{})
	rooms := redisadapter.NewRooms(f.rdb, f.prefix)
	if !purchases.AdmissionInPurchase() {
		t.Fatal("the purchase store does not spend admissions")
	}
	s := roomSale(t, f.inv, 3, 2, 100, time.Minute, started(), shards)
	users := make([]uuid.UUID, 4)
	for i := range users {
		users[i] = uuid.New()
		if _, err := rooms.Join(f.ctx, s, users[i], rand.Float64()); err != nil {
			t.Fatal(err)
		}
	}
	// 3 units at 2 a shopper serve 2 admissions: users[0] and users[1] in arrival order.
	if pass, err := rooms.Admit(f.ctx, s, 3, time.Hour); err != nil || len(pass.Admitted) != 2 {
		t.Fatalf("Admit = %+v, %v; want 2 admitted", pass, err)
	}
	a, b, waiting := users[0], users[1], users[2]
	gate := ports.PurchaseGate{RateKey: "purchase:198.51.100.7", PerMinute: 1}
	purchase := func(user uuid.UUID, key string, qty int, g ports.PurchaseGate) ports.Purchase {
		p := roomPurchase(s, user, key, qty)
		p.Gate = g
		return p
	}
	state := func(user uuid.UUID) domain.QueueState {
		t.Helper()
		p, _, err := rooms.Place(f.ctx, s, user)
		if err != nil {
			t.Fatal(err)
		}
		return p.State
	}
	code := func(err error) domain.Code { return domain.CodeOf(err) }

	// Without an admission: refused, nothing taken, the key free for the same purchase later.
	none := purchase(waiting, "w1", 1, ports.PurchaseGate{})
	if _, err := purchases.Purchase(f.ctx, none); code(err) != domain.ErrAdmissionRequired.Code {
		t.Fatalf("Purchase without an admission: %v, want admission-required", err)
	}
	if rec, ok, err := purchases.Lookup(f.ctx, none.Scope, none.Reservation.SaleID, uuid.Nil); err != nil || ok {
		t.Fatalf("key of a purchase without an admission = %+v, %v, %v; want free", rec, ok, err)
	}

	// Over the limit (3 > 2): refused for good, the admission kept.
	if _, err := purchases.Purchase(f.ctx, purchase(a, "a0", 3, ports.PurchaseGate{})); code(err) != domain.ErrPurchaseLimitExceeded.Code {
		t.Fatalf("Purchase over the limit: %v, want purchase-limit-exceeded", err)
	}
	if got := state(a); got != domain.QueueAdmitted {
		t.Fatalf("after a refused purchase the admission is %q, want still admitted", got)
	}

	// Accepted: the admission is spent in the purchase's one round trip.
	first := purchase(a, "a1", 2, gate)
	before := trips.n.Load()
	out, err := purchases.Purchase(f.ctx, first)
	if err != nil || out.Reserved.Reservation.OrderID != first.Reservation.OrderID {
		t.Fatalf("Purchase with an admission = %+v, %v; want accepted", out, err)
	}
	// One round trip (2: the script's first load); a sharded sale's purchase also reads its
	// shards' count and sums their stock.
	if n := trips.n.Load() - before; !cluster && shards == 1 && n != 1 && n != 2 {
		t.Fatalf("the purchase took %d round trips", n)
	}
	if got := state(a); got != domain.QueueUsed {
		t.Fatalf("after the purchase the admission is %q, want used", got)
	}
	// A replay needs no admission; another purchase by the same buyer finds it used.
	replay := first
	replay.Gate = ports.PurchaseGate{}
	if out, err := purchases.Purchase(f.ctx, replay); err != nil || (out.Known == nil && !out.Reserved.Duplicate) {
		t.Fatalf("replay = %+v, %v; want the first order", out, err)
	}
	if _, err := purchases.Purchase(f.ctx, purchase(a, "a2", 1, ports.PurchaseGate{})); code(err) != domain.ErrAdmissionRequired.Code {
		t.Fatalf("second purchase on a used admission: %v, want admission-required", err)
	}

	// Rate-limited (the gate's counter is spent by the first purchase): the admission kept.
	if _, err := purchases.Purchase(f.ctx, purchase(b, "b1", 1, gate)); !errors.Is(err, domain.ErrRateLimited) {
		t.Fatalf("rate-limited purchase: %v, want ErrRateLimited", err)
	}
	if got := state(b); got != domain.QueueAdmitted {
		t.Fatalf("after a rate-limited purchase the admission is %q, want still admitted", got)
	}
	// More than is left (1): refused, kept; then the last unit, spent.
	if _, err := purchases.Purchase(f.ctx, purchase(b, "b2", 2, ports.PurchaseGate{})); code(err) != domain.ErrInsufficientStock.Code {
		t.Fatalf("purchase beyond the stock: %v, want insufficient-stock", err)
	}
	if got := state(b); got != domain.QueueAdmitted {
		t.Fatalf("after a purchase beyond the stock the admission is %q, want still admitted", got)
	}
	if _, err := purchases.Purchase(f.ctx, purchase(b, "b3", 1, ports.PurchaseGate{})); err != nil {
		t.Fatalf("purchase of the last unit: %v", err)
	}
	if got := state(b); got != domain.QueueUsed {
		t.Fatalf("after the last unit the admission is %q, want used", got)
	}
	// On one shard nothing holds a share once the stock is taken: the pass finds the sale sold
	// out and no admission out. A sharded sale's spent admissions hold a while (the pass cannot
	// see their shards' buyers).
	pass, err := rooms.Admit(f.ctx, s, 0, time.Hour)
	if err != nil || !pass.Room.Closed {
		t.Fatalf("pass after the sell-out = %+v, %v; want closed", pass, err)
	}
	if shards == 1 && pass.Outstanding != 0 {
		t.Fatalf("pass after the sell-out = %+v; want no admission out", pass)
	}
}
