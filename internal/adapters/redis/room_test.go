package redis_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// roomSale is a sale with a waiting room, started a minute ago unless start says otherwise,
// its inventory synced.
func roomSale(t *testing.T, inv *redisadapter.Inventory, stock, limit, rate int, ttl time.Duration, start time.Time, shards int) domain.Sale {
	t.Helper()
	s := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "room", PriceCents: 500, Currency: "EUR",
		TotalStock: stock, PerUserLimit: limit, StartsAt: start, EndsAt: start.Add(time.Hour), Shards: shards,
		WaitingRoom: domain.WaitingRoom{Enabled: true, AdmitPerSecond: rate, AdmissionTTL: ttl}}
	if _, err := inv.SyncSale(context.Background(), s, 0); err != nil {
		t.Fatalf("SyncSale: %v", err)
	}
	return s
}

func started() time.Time { return time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond) }

func join(t *testing.T, rooms *redisadapter.Rooms, s domain.Sale, n int) []uuid.UUID {
	t.Helper()
	users := make([]uuid.UUID, n)
	for i := range users {
		users[i] = uuid.New()
		p, err := rooms.Join(context.Background(), s, users[i], rand.Float64())
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
		if p.State != domain.QueueWaiting || p.Position < 1 {
			t.Fatalf("Join = %+v, want waiting with a position", p)
		}
	}
	return users
}

func admit(t *testing.T, rooms *redisadapter.Rooms, s domain.Sale, remaining int) domain.AdmitPass {
	t.Helper()
	pass, err := rooms.Admit(context.Background(), s, remaining, time.Hour)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	return pass
}

// roomPurchase is a purchase of qty units of a room sale by user with key, spending the
// buyer's admission in the purchase (ports.Purchase.Admission).
func roomPurchase(s domain.Sale, user uuid.UUID, key string, qty int) ports.Purchase {
	return ports.Purchase{Scope: ports.IdempotencyScope{TenantID: s.TenantID, UserID: user, Key: key}, Fingerprint: "fp-" + key,
		Lease: 5 * time.Second, TTL: time.Hour, Admission: true, Reservation: domain.Reservation{OrderID: uuid.New(),
			TenantID: s.TenantID, SaleID: s.ID, UserID: user, Quantity: qty, IdempotencyKey: key}}
}

func ids(a []domain.Admitted) []uuid.UUID {
	out := make([]uuid.UUID, len(a))
	for i, x := range a {
		out[i] = x.UserID
	}
	return out
}

// TestRoomAdmitsWhatTheStockCanServe: 5 units at 2 a shopper serve 3 admissions (the last may
// get 1); the others are told the stock is covered; an admission is spent once (its own
// idempotency key finds it spent again), a purchase frees nothing until the stock is taken,
// and an expired admission frees its share for the next in line.
func TestRoomAdmitsWhatTheStockCanServe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	inv := redisadapter.NewInventory(r.Client, r.Prefix)
	rooms := redisadapter.NewRooms(r.Client, r.Prefix)
	rooms.Hold = 100 * time.Millisecond
	s := roomSale(t, inv, 5, 2, 100, 300*time.Millisecond, started(), 1)
	users := join(t, rooms, s, 10)

	// Joining again keeps the place; after the start, places go in arrival order.
	for i, u := range users {
		p, err := rooms.Join(ctx, s, u, 0.5)
		if err != nil || p.Position != i+1 || p.Key < 1 {
			t.Fatalf("Join again #%d = %+v, %v; want position %d, an arrival key", i, p, err, i+1)
		}
	}
	pass := admit(t, rooms, s, -1) // the one-shard sale's stock is read by the script itself
	if got := ids(pass.Admitted); !slices.Equal(got, users[:3]) {
		t.Fatalf("admitted %v, want the first three %v", got, users[:3])
	}
	if !pass.Room.LikelySoldOut || pass.Room.Closed || pass.Remaining != 5 || pass.Outstanding != 3 || pass.Room.Waiting != 7 {
		t.Fatalf("pass = %+v, want 5 units covered by 3 admissions, 7 waiting, likely sold out", pass)
	}
	if again := admit(t, rooms, s, -1); len(again.Admitted) != 0 || again.Changed {
		t.Fatalf("second pass = %+v, want nobody more, nothing changed", again)
	}
	p, ok, err := rooms.Place(ctx, s, users[3])
	if err != nil || !ok || p.State != domain.QueueWaiting || p.Position != 1 || !p.Room.LikelySoldOut {
		t.Fatalf("Place of the 4th = %+v, %v, %v; want first in line, likely sold out", p, ok, err)
	}
	if p, _, _ := rooms.Place(ctx, s, users[0]); p.State != domain.QueueAdmitted || p.AdmittedUntil.IsZero() {
		t.Fatalf("Place of the 1st = %+v, want admitted with an end", p)
	}

	for _, c := range []struct {
		user uuid.UUID
		key  string
		want domain.AdmissionUse
	}{
		{users[0], "key-1", domain.AdmissionSpent},
		{users[0], "key-1", domain.AdmissionSpent}, // the same purchase retried
		{users[0], "key-2", domain.AdmissionUsedUp},
		{users[3], "key-1", domain.AdmissionNone},
	} {
		if got, err := rooms.UseAdmission(ctx, s.TenantID, s.ID, c.user, c.key); err != nil || got != c.want {
			t.Fatalf("UseAdmission(%v, %s) = %q, %v; want %q", c.user, c.key, got, err, c.want)
		}
	}
	// Until the purchase's reservation lands, the spent admission holds its share.
	if pass := admit(t, rooms, s, -1); len(pass.Admitted) != 0 || pass.Outstanding != 3 {
		t.Fatalf("pass after the spend = %+v, want the share still held", pass)
	}
	if _, err := inv.Reserve(ctx, domain.Reservation{OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID,
		UserID: users[0], Quantity: 2, IdempotencyKey: "key-1"}); err != nil {
		t.Fatal(err)
	}
	// Once the reservation took the stock, the spent admission holds nothing (no double count).
	if pass := admit(t, rooms, s, -1); len(pass.Admitted) != 0 || pass.Outstanding != 2 || pass.Remaining != 3 {
		t.Fatalf("pass after the reservation = %+v, want 2 admissions out against 3 units", pass)
	}
	// The spent admission holds its share until its hold ends, the unused ones until they expire.
	time.Sleep(350 * time.Millisecond)
	pass = admit(t, rooms, s, -1)
	if pass.Expired != 2 || pass.Remaining != 3 || len(pass.Admitted) != 2 || pass.Admitted[0].UserID != users[3] {
		t.Fatalf("pass after expiry = %+v, want 2 expired, 3 units left for 2 more, the 4th first", pass)
	}
	if got, _ := rooms.UseAdmission(ctx, s.TenantID, s.ID, users[1], "key-9"); got != domain.AdmissionExpired {
		t.Fatalf("an expired admission spent: %q", got)
	}
	if p, _ := rooms.Join(ctx, s, users[1], 0.1); p.State != domain.QueueExpired {
		t.Fatalf("an expired shopper joined again: %+v; an admission is given once", p)
	}

	// Redis lost the room (not the inventory, rebuilt from PostgreSQL with its buyers): a
	// shopper who bought is not placed, nor admitted, again.
	testutil.DeleteKeys(ctx, r.Client, r.Prefix+":*room:*")
	if p, err := rooms.Join(ctx, s, users[0], 0.2); err != nil || p.State != domain.QueueUsed {
		t.Fatalf("a buyer joining a room that lost its keys = %+v, %v; want used", p, err)
	}
	if p, err := rooms.Join(ctx, s, users[1], 0.2); err != nil || p.State != domain.QueueWaiting {
		t.Fatalf("a shopper who never bought, after the loss = %+v, %v; want a new place", p, err)
	}
	// The buyer's purchase sent again with its key reaches its replay; another key does not.
	if got, err := rooms.UseAdmission(ctx, s.TenantID, s.ID, users[0], "key-1"); err != nil || got != domain.AdmissionSpent {
		t.Fatalf("the accepted purchase's retry after the loss = %q, %v; want it let through", got, err)
	}
	if got, _ := rooms.UseAdmission(ctx, s.TenantID, s.ID, users[0], "key-3"); got != domain.AdmissionNone {
		t.Fatalf("a new purchase after the loss = %q; want refused", got)
	}
}

// TestRoomRateAndClosing: the room admits at its rate, and closes when the stock is gone
// (places kept), reopening from the same order when stock comes back.
func TestRoomRateAndClosing(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	inv := redisadapter.NewInventory(r.Client, r.Prefix)
	rooms := redisadapter.NewRooms(r.Client, r.Prefix)
	s := roomSale(t, inv, 1000, 1, 20, time.Minute, started(), 1)
	users := join(t, rooms, s, 50)
	if pass := admit(t, rooms, s, -1); len(pass.Admitted) != 20 {
		t.Fatalf("first pass admitted %d, want a second's worth (20)", len(pass.Admitted))
	}
	time.Sleep(250 * time.Millisecond)
	if pass := admit(t, rooms, s, -1); len(pass.Admitted) < 4 || len(pass.Admitted) > 6 {
		t.Fatalf("a pass 250 ms later admitted %d, want about 5", len(pass.Admitted))
	}

	// Sold out: a sharded reading (the caller's sum) of 0 closes the room.
	sh := roomSale(t, inv, 4, 1, 100, time.Minute, started(), 4)
	waiting := join(t, rooms, sh, 3)
	pass := admit(t, rooms, sh, 0)
	if !pass.Room.Closed || len(pass.Admitted) != 0 || !pass.Changed {
		t.Fatalf("pass of a sold-out sharded sale = %+v, want closed", pass)
	}
	if p, _, _ := rooms.Place(context.Background(), sh, waiting[1]); p.State != domain.QueueClosed || p.Position != 2 {
		t.Fatalf("Place in a closed room = %+v, want closed, place kept", p)
	}
	pass = admit(t, rooms, sh, 1) // one unit came back
	if pass.Room.Closed || len(pass.Admitted) != 1 || pass.Admitted[0].UserID != waiting[0] || !pass.Room.LikelySoldOut {
		t.Fatalf("pass after stock came back = %+v, want the first in line admitted, the rest told it is covered", pass)
	}
	_ = users
}

// TestRoomDrawsPreStartJoinersAtRandom: the shoppers who join before the start are admitted in
// the order of their draws, not of their arrival; those who join after the start come behind
// every one of them; a silent shopper loses the place once the grace after the start ends.
func TestRoomDrawsPreStartJoinersAtRandom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	inv := redisadapter.NewInventory(r.Client, r.Prefix)
	rooms := redisadapter.NewRooms(r.Client, r.Prefix)
	start := time.Now().Add(700 * time.Millisecond).UTC().Truncate(time.Millisecond)
	s := roomSale(t, inv, 1000, 1, 1000, time.Minute, start, 1)
	early := join(t, rooms, s, 300)
	if pass := admit(t, rooms, s, -1); len(pass.Admitted) != 0 {
		t.Fatalf("admitted %d before the start", len(pass.Admitted))
	}
	time.Sleep(time.Until(start) + 50*time.Millisecond)
	late := join(t, rooms, s, 2)
	var order []uuid.UUID
	for len(order) < 302 {
		pass := admit(t, rooms, s, -1)
		order = append(order, ids(pass.Admitted)...)
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Equal(order[300:], late) {
		t.Fatalf("the late joiners were not admitted last in arrival order")
	}
	// Spearman's rank correlation of join order against admission order: near 0 (|rho| < 0.2
	// holds with probability above 0.999 for 300 random ranks).
	rank := map[uuid.UUID]int{}
	for i, u := range order[:300] {
		rank[u] = i
	}
	var d2 float64
	for i, u := range early {
		d := float64(i - rank[u])
		d2 += d * d
	}
	n := 300.0
	if rho := 1 - 6*d2/(n*(n*n-1)); rho > 0.2 || rho < -0.2 {
		t.Fatalf("join order predicts admission order: rho = %.3f", rho)
	}

	// Silence: with a grace of 100 ms after the start, a waiting shopper who stays silent goes.
	s2 := roomSale(t, inv, 0+1, 1, 1, time.Minute, started(), 1)
	quiet := join(t, rooms, s2, 3)
	if _, err := inv.Reserve(ctx, domain.Reservation{OrderID: uuid.New(), TenantID: s2.TenantID, SaleID: s2.ID,
		UserID: uuid.New(), Quantity: 1, IdempotencyKey: "k-sold"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, _, err := rooms.Place(ctx, s2, quiet[0]); err != nil { // a heartbeat keeps quiet[0]
		t.Fatal(err)
	}
	pass, err := rooms.Admit(ctx, s2, -1, 100*time.Millisecond)
	if err != nil || pass.Lost != 2 || pass.Room.Waiting != 1 || !pass.Room.Closed {
		t.Fatalf("pass = %+v, %v; want 2 silent shoppers gone, 1 kept, the room closed (sold out)", pass, err)
	}
	if _, ok, _ := rooms.Place(ctx, s2, quiet[1]); ok {
		t.Fatal("a silent shopper kept the place")
	}
}

// TestRoomRestorePutsBackLostAdmissions: after the room's keys are lost, the room is not
// present; Restore puts back each admission as the record and the orders say (bought: spent by
// its order's key; live; past its end: expired), takes a shopper who joined again out of the
// queue, keeps what the store holds, and stamps the room present. The next pass admits nobody
// twice, and the buyer's admission stays spent for another key.
func TestRoomRestorePutsBackLostAdmissions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	inv := redisadapter.NewInventory(r.Client, r.Prefix)
	rooms := redisadapter.NewRooms(r.Client, r.Prefix)
	purchases := redisadapter.NewPurchases(inv, redisadapter.Wait{})
	s := roomSale(t, inv, 10, 1, 100, time.Minute, started(), 1)
	if ok, err := rooms.Present(ctx, s); err != nil || ok {
		t.Fatalf("Present before any pass = %v, %v; want false", ok, err)
	}
	users := join(t, rooms, s, 4)
	pass := admit(t, rooms, s, -1)
	if len(pass.Admitted) != 4 {
		t.Fatalf("admitted %d, want 4", len(pass.Admitted))
	}
	if ok, err := rooms.Present(ctx, s); err != nil || !ok {
		t.Fatalf("Present after a pass = %v, %v; want true", ok, err)
	}
	// The room's keys are lost (the inventory's too would be, and rebuilt: not needed here).
	base := r.Prefix + ":{" + s.TenantID.String() + ":" + s.ID.String() + "}:room:"
	var keys []string
	for _, k := range []string{"wait", "seen", "adm", "state", "live", "held"} {
		keys = append(keys, base+k)
	}
	if n, err := r.Client.Del(ctx, keys...).Result(); err != nil || n != 3 { // adm, state, live: every place was taken
		t.Fatalf("deleting the room's keys: %d, %v", n, err)
	}
	if ok, _ := rooms.Present(ctx, s); ok {
		t.Fatal("Present after the loss, want false")
	}
	// users[1] joins again before the restore; users[3]'s admission had ended.
	if p, err := rooms.Join(ctx, s, users[1], 0.5); err != nil || p.State != domain.QueueWaiting {
		t.Fatalf("join again after the loss = %+v, %v", p, err)
	}
	until := pass.Admitted[0].Until
	records := []domain.Admitted{{UserID: users[0], Until: until}, {UserID: users[1], Until: until},
		{UserID: users[2], Until: until}, {UserID: users[3], Until: time.Now().Add(-time.Second)}}
	if err := rooms.Restore(ctx, s, records, map[uuid.UUID]string{users[0]: "bought-0"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := rooms.Present(ctx, s); !ok {
		t.Fatal("Present after the restore, want true")
	}
	for i, want := range []domain.QueueState{domain.QueueUsed, domain.QueueAdmitted, domain.QueueAdmitted, domain.QueueExpired} {
		if p, ok, err := rooms.Place(ctx, s, users[i]); err != nil || !ok || p.State != want {
			t.Fatalf("user %d after the restore = %+v, %v, %v; want %s", i, p, ok, err, want)
		}
	}
	if again := admit(t, rooms, s, -1); len(again.Admitted) != 0 || again.Outstanding != 2 {
		t.Fatalf("pass after the restore = %+v; want nobody admitted again, 2 admissions live", again)
	}
	if _, err := purchases.Purchase(ctx, roomPurchase(s, users[0], "other", 1)); domain.CodeOf(err) != domain.ErrAdmissionRequired.Code {
		t.Fatalf("the buyer's purchase with another key after the restore: %v, want admission-required", err)
	}
}

// TestRoomFindsItsRateItself: with autoRate the room starts at a tenth of admitPerSecond and,
// a second later, raises its rate by half when the shoppers it admitted bought (no admission
// left unspent), or cuts it by a quarter when they did not; the rate in force is what a waiting
// shopper's place reports.
func TestRoomFindsItsRateItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	inv := redisadapter.NewInventory(r.Client, r.Prefix)
	rooms := redisadapter.NewRooms(r.Client, r.Prefix)
	purchases := redisadapter.NewPurchases(inv, redisadapter.Wait{})
	s := roomSale(t, inv, 1000, 1, 100, time.Minute, started(), 1)
	s.WaitingRoom.AutoRate = true
	users := join(t, rooms, s, 100)
	buyAll := func(admitted []domain.Admitted) {
		t.Helper()
		for _, a := range admitted {
			if _, err := purchases.Purchase(ctx, roomPurchase(s, a.UserID, "k", 1)); err != nil {
				t.Fatalf("purchase of an admitted shopper: %v", err)
			}
		}
	}
	first := admit(t, rooms, s, -1)
	if len(first.Admitted) != 10 || first.Room.Rate != 10 {
		t.Fatalf("first pass admitted %d at %d/s; want 10 (a tenth of 100)", len(first.Admitted), first.Room.Rate)
	}
	buyAll(first.Admitted)
	time.Sleep(1100 * time.Millisecond)
	second := admit(t, rooms, s, -1)
	if len(second.Admitted) != 15 || second.Room.Rate != 15 {
		t.Fatalf("after every admitted shopper bought: admitted %d at %d/s; want 15 (raised by half)", len(second.Admitted), second.Room.Rate)
	}
	time.Sleep(1100 * time.Millisecond) // nobody buys: 15 admissions out unspent
	third := admit(t, rooms, s, -1)
	if len(third.Admitted) != 11 || third.Room.Rate != 11 {
		t.Fatalf("with the admitted not buying: admitted %d at %d/s; want 11 (cut by a quarter)", len(third.Admitted), third.Room.Rate)
	}
	if p, _, err := rooms.Place(ctx, s, users[len(users)-1]); err != nil || p.Room.Rate != 11 {
		t.Fatalf("a waiting shopper's place = %+v, %v; want the rate in force, 11", p, err)
	}
}
