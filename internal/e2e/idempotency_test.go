package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// purchase is POST /v1/sales/{sale}/orders with an Idempotency-Key; body is sent as is.
func purchase(saleID uuid.UUID, token, key, body string) testutil.Request {
	return testutil.Request{Method: "POST", Path: "/v1/sales/" + saleID.String() + "/orders", Token: token,
		Header: map[string]string{"Idempotency-Key": key}, Body: body}
}

func quantityBody(n int) string { return `{"quantity":` + strconv.Itoa(n) + `}` }

// orderRow is an order as PostgreSQL holds it.
type orderRow struct {
	ID, UserID     uuid.UUID
	Quantity       int
	IdempotencyKey string
	Status         string
}

func ordersOf(t *testing.T, sys *testutil.System, saleID uuid.UUID) []orderRow {
	t.Helper()
	rows, err := sys.Pool.Query(context.Background(),
		"SELECT id, user_id, quantity, idempotency_key, status FROM orders WHERE sale_id = $1 ORDER BY created_at, id", saleID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []orderRow
	for rows.Next() {
		var o orderRow
		if err := rows.Scan(&o.ID, &o.UserID, &o.Quantity, &o.IdempotencyKey, &o.Status); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stockState is a sale's live state in Redis: the inventory hash, the units per buyer and the
// number of reservations (one per accepted order).
type stockState struct {
	Remaining, Sold int
	Buyers          map[string]string
	Reservations    int64
}

func stockOf(t *testing.T, sys *testutil.System, sale app.SaleView) stockState {
	t.Helper()
	ctx := context.Background()
	base := sys.Config.RedisPrefix + ":{" + sale.Sale.TenantID.String() + ":" + sale.Sale.ID.String() + "}:"
	inv, err := sys.Redis.HMGet(ctx, base+"inv", "remaining", "sold").Result()
	if err != nil || inv[0] == nil {
		t.Fatalf("inventory of sale %s: %v %v", sale.Sale.ID, inv, err)
	}
	remaining, _ := strconv.Atoi(inv[0].(string))
	sold, _ := strconv.Atoi(inv[1].(string))
	buyers, err := sys.Redis.HGetAll(ctx, base+"buyers").Result()
	if err != nil {
		t.Fatal(err)
	}
	res, err := sys.Redis.HLen(ctx, base+"res").Result()
	if err != nil {
		t.Fatal(err)
	}
	return stockState{Remaining: remaining, Sold: sold, Buyers: buyers, Reservations: res}
}

// waitDrained waits until want orders of the sale are confirmed in PostgreSQL and the order
// queue has nothing left to run, so that counting afterwards counts everything.
func waitDrained(t *testing.T, sys *testutil.System, saleID uuid.UUID, want int) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%d confirmed orders and an idle order queue", want), func() bool {
		confirmed := 0
		for _, o := range ordersOf(t, sys, saleID) {
			if o.Status == "confirmed" {
				confirmed++
			}
		}
		info := queueInfo(t, sys)
		idle := info == nil || info.Pending+info.Active+info.Scheduled+info.Retry+info.Aggregating == 0
		return confirmed >= want && idle
	})
}

func orderID(t *testing.T, r testutil.Response) string {
	t.Helper()
	id, _ := r.JSON(t)["id"].(string)
	if id == "" {
		t.Fatalf("answer carries no order id: %d %s", r.Status, r.Body)
	}
	return id
}

// TestIdempotencyReplay: the same key with the same request replays the first answer byte for
// byte, marked as a replay, and only one order ever exists.
func TestIdempotencyReplay(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	token := sys.TokenFor(t, shopper)
	sale := sys.CreateSale(t, 10, 5, -time.Minute, time.Hour)
	const key = "replay-key-0001"

	first := c.Do(t, purchase(sale.Sale.ID, token, key, quantityBody(2)))
	if first.Status != http.StatusAccepted {
		t.Fatalf("first purchase: %d %s", first.Status, first.Body)
	}
	if h := first.Header.Values("Idempotent-Replayed"); len(h) != 0 {
		t.Errorf("the original answer is marked as a replay: %q", h)
	}
	id := orderID(t, first)

	second := c.Do(t, purchase(sale.Sale.ID, token, key, quantityBody(2)))
	if second.Status != http.StatusAccepted || !bytes.Equal(second.Body, first.Body) {
		t.Fatalf("replay differs from the original:\nfirst  %d %s\nsecond %d %s", first.Status, first.Body, second.Status, second.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay without Idempotent-Replayed: true (headers %v)", second.Header)
	}
	if second.Header.Get("Location") != first.Header.Get("Location") || first.Header.Get("Location") != "/v1/orders/"+id {
		t.Errorf("Location: first %q, replay %q", first.Header.Get("Location"), second.Header.Get("Location"))
	}

	waitDrained(t, sys, sale.Sale.ID, 1)

	// After the order is durable, the same request, spelled differently, is still the same
	// purchase: the replay is the first answer (pending), not a fresh read.
	third := c.Do(t, purchase(sale.Sale.ID, token, key, "{ \"quantity\" : 2 }\n"))
	if third.Status != http.StatusAccepted || !bytes.Equal(third.Body, first.Body) || third.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after the worker drained: %d %q %s (first %s)", third.Status, third.Header.Get("Idempotent-Replayed"), third.Body, first.Body)
	}

	orders := ordersOf(t, sys, sale.Sale.ID)
	if len(orders) != 1 || orders[0].ID.String() != id || orders[0].Quantity != 2 || orders[0].IdempotencyKey != key || orders[0].Status != "confirmed" {
		t.Fatalf("orders in PostgreSQL: %+v, want exactly order %s", orders, id)
	}
	st := stockOf(t, sys, sale)
	if st.Remaining != 8 || st.Sold != 2 || st.Buyers[shopper.ID.String()] != "2" || st.Reservations != 1 {
		t.Fatalf("stock taken more than once: %+v", st)
	}
	if info := queueInfo(t, sys); info == nil || info.ProcessedTotal-info.FailedTotal != 1 {
		t.Fatalf("order tasks that succeeded: %+v, want exactly 1", info)
	}
}

// TestIdempotencyKeyReusedForAnotherRequest: the same key with another quantity or for another
// sale is refused with 422 and reserves nothing; the key still replays its first answer, and
// keys belong to their user.
func TestIdempotencyKeyReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	users := sys.CreateUsers(t, 2, domain.RoleShopper)
	ada, bob := users[0], users[1]
	adaToken, bobToken := sys.TokenFor(t, ada), sys.TokenFor(t, bob)
	sale := sys.CreateSale(t, 10, 5, -time.Minute, time.Hour)
	other := sys.CreateSale(t, 10, 5, -time.Minute, time.Hour)
	const key = "reused-key-0001"

	first := c.Do(t, purchase(sale.Sale.ID, adaToken, key, quantityBody(1)))
	if first.Status != http.StatusAccepted {
		t.Fatalf("first purchase: %d %s", first.Status, first.Body)
	}
	for _, tc := range []struct {
		name string
		req  testutil.Request
	}{
		{"another quantity", purchase(sale.Sale.ID, adaToken, key, quantityBody(2))},
		{"the same body to another sale", purchase(other.Sale.ID, adaToken, key, quantityBody(1))},
	} {
		r := c.Do(t, tc.req)
		if r.Status != http.StatusUnprocessableEntity || r.ProblemType() != "idempotency-key-reused" {
			t.Errorf("%s: %d %q, want 422 idempotency-key-reused: %s", tc.name, r.Status, r.ProblemType(), r.Body)
		}
		if h := r.Header.Values("Idempotent-Replayed"); len(h) != 0 {
			t.Errorf("%s: a refusal of a reused key is marked as a replay: %q", tc.name, h)
		}
	}

	// The mismatches did not disturb the key: the original request still replays.
	again := c.Do(t, purchase(sale.Sale.ID, adaToken, key, quantityBody(1)))
	if again.Status != http.StatusAccepted || !bytes.Equal(again.Body, first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("original request after the mismatches: %d %s (first %s)", again.Status, again.Body, first.Body)
	}
	// Keys are per user: another shopper's identical key is another purchase.
	bobs := c.Do(t, purchase(sale.Sale.ID, bobToken, key, quantityBody(2)))
	if bobs.Status != http.StatusAccepted || bobs.Header.Get("Idempotent-Replayed") != "" || orderID(t, bobs) == orderID(t, first) {
		t.Fatalf("another user's purchase with the same key: %d %q %s", bobs.Status, bobs.Header.Get("Idempotent-Replayed"), bobs.Body)
	}

	waitDrained(t, sys, sale.Sale.ID, 2)
	orders := ordersOf(t, sys, sale.Sale.ID)
	if len(orders) != 2 {
		t.Fatalf("orders of the sale: %+v, want Ada's and Bob's", orders)
	}
	byUser := map[uuid.UUID]orderRow{}
	for _, o := range orders {
		byUser[o.UserID] = o
	}
	if o := byUser[ada.ID]; o.ID.String() != orderID(t, first) || o.Quantity != 1 {
		t.Errorf("Ada's order: %+v, want %s of 1", o, orderID(t, first))
	}
	if o := byUser[bob.ID]; o.ID.String() != orderID(t, bobs) || o.Quantity != 2 {
		t.Errorf("Bob's order: %+v, want %s of 2", o, orderID(t, bobs))
	}
	if st := stockOf(t, sys, sale); st.Remaining != 7 || st.Sold != 3 || st.Reservations != 2 ||
		st.Buyers[ada.ID.String()] != "1" || st.Buyers[bob.ID.String()] != "2" {
		t.Errorf("stock of the sale: %+v, want 7 left (Ada 1, Bob 2)", st)
	}
	if st := stockOf(t, sys, other); st.Remaining != 10 || st.Sold != 0 || st.Reservations != 0 || len(st.Buyers) != 0 {
		t.Errorf("stock of the other sale was touched: %+v", st)
	}
	if orders := ordersOf(t, sys, other.Sale.ID); len(orders) != 0 {
		t.Errorf("orders of the other sale: %+v", orders)
	}
}

// TestIdempotencyConcurrentDuplicates: 50 identical requests (same key, same body) released at the
// same instant. One does the work; every other answer is its replay or 409 in-flight, and the
// stock is taken exactly once.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	const n, quantity = 50, 3
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	token := sys.TokenFor(t, shopper)
	sale := sys.CreateSale(t, 100, 10, -time.Minute, time.Hour)
	req := purchase(sale.Sale.ID, token, "concurrent-key-0001", quantityBody(quantity))

	// Open the connections first, so that the barrier releases requests, not TCP handshakes.
	var warm sync.WaitGroup
	for range n {
		warm.Go(func() { c.Do(t, testutil.Request{Method: "GET", Path: "/healthz"}) })
	}
	warm.Wait()

	answers := make([]testutil.Response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = c.Do(t, req)
		})
	}
	close(start)
	wg.Wait()

	var originals, replays, inFlight int
	var id string
	var body []byte
	for i, r := range answers {
		switch {
		case r.Status == http.StatusAccepted:
			if got := orderID(t, r); id == "" {
				id, body = got, r.Body
			} else if got != id || !bytes.Equal(r.Body, body) {
				t.Errorf("answer %d accepts another order: %s, first accepted %s", i, r.Body, body)
			}
			switch r.Header.Get("Idempotent-Replayed") {
			case "":
				originals++
			case "true":
				replays++
			default:
				t.Errorf("answer %d: Idempotent-Replayed %q", i, r.Header.Get("Idempotent-Replayed"))
			}
		case r.Status == http.StatusConflict && r.ProblemType() == "idempotency-key-in-flight":
			inFlight++
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("answer %d: an in-flight refusal is marked as a replay", i)
			}
		default:
			t.Errorf("answer %d: %d %q %s, want 202 or 409 idempotency-key-in-flight", i, r.Status, r.ProblemType(), r.Body)
		}
	}
	t.Logf("%d requests: %d original, %d replays, %d in flight", n, originals, replays, inFlight)
	if originals != 1 {
		t.Fatalf("%d answers were not replays, want exactly 1 (the one that did the work)", originals)
	}

	waitDrained(t, sys, sale.Sale.ID, 1)
	if orders := ordersOf(t, sys, sale.Sale.ID); len(orders) != 1 || orders[0].ID.String() != id || orders[0].Quantity != quantity {
		t.Fatalf("orders in PostgreSQL: %+v, want exactly %s", orders, id)
	}
	if st := stockOf(t, sys, sale); st.Remaining != 100-quantity || st.Sold != quantity || st.Reservations != 1 ||
		st.Buyers[shopper.ID.String()] != strconv.Itoa(quantity) {
		t.Fatalf("stock not taken exactly once: %+v", st)
	}
	if info := queueInfo(t, sys); info == nil || info.ProcessedTotal-info.FailedTotal != 1 {
		t.Fatalf("order tasks that succeeded: %+v, want exactly 1", info)
	}
	// Once settled, the key answers with the replay only.
	if r := c.Do(t, req); r.Status != http.StatusAccepted || !bytes.Equal(r.Body, body) || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after the storm: %d %q %s", r.Status, r.Header.Get("Idempotent-Replayed"), r.Body)
	}
}

// TestIdempotencyRefusalIsReplayed: a final refusal (over the per-user limit) is the key's answer for good:
// it is replayed even after the limit is raised, while a new key sees the new limit.
func TestIdempotencyRefusalIsReplayed(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	token := sys.TokenFor(t, shopper)
	_, adminToken := sys.Admin(t)
	sale := sys.CreateSale(t, 10, 2, -time.Minute, time.Hour)

	if r := c.Do(t, purchase(sale.Sale.ID, token, "limit-key-A", quantityBody(2))); r.Status != http.StatusAccepted {
		t.Fatalf("buying up to the limit: %d %s", r.Status, r.Body)
	}
	refused := c.Do(t, purchase(sale.Sale.ID, token, "limit-key-B", quantityBody(1)))
	if refused.Status != http.StatusConflict || refused.ProblemType() != "purchase-limit-exceeded" {
		t.Fatalf("over the limit: %d %q %s", refused.Status, refused.ProblemType(), refused.Body)
	}
	if h := refused.Header.Values("Idempotent-Replayed"); len(h) != 0 {
		t.Errorf("the original refusal is marked as a replay: %q", h)
	}
	sameProblem := func(name string, r testutil.Response) {
		t.Helper()
		want, got := refused.JSON(t), r.JSON(t)
		if r.Status != refused.Status || r.Header.Get("Idempotent-Replayed") != "true" ||
			got["type"] != want["type"] || got["title"] != want["title"] || got["status"] != want["status"] || got["detail"] != want["detail"] {
			t.Fatalf("%s: %d %q %s, want the replay of %s", name, r.Status, r.Header.Get("Idempotent-Replayed"), r.Body, refused.Body)
		}
	}
	sameProblem("the same key again", c.Do(t, purchase(sale.Sale.ID, token, "limit-key-B", quantityBody(1))))

	// Raise the limit: the recorded refusal stands, a new key is judged afresh.
	if r := c.Do(t, testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + sale.Sale.ID.String(), Token: adminToken,
		Body: map[string]any{"perUserLimit": 5}}); r.Status != http.StatusOK {
		t.Fatalf("raise the limit: %d %s", r.Status, r.Body)
	}
	sameProblem("the same key after the limit was raised", c.Do(t, purchase(sale.Sale.ID, token, "limit-key-B", quantityBody(1))))
	if r := c.Do(t, purchase(sale.Sale.ID, token, "limit-key-C", quantityBody(1))); r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a new key under the raised limit: %d %q %s", r.Status, r.Header.Get("Idempotent-Replayed"), r.Body)
	}
	if r := c.Do(t, purchase(sale.Sale.ID, token, "limit-key-B", quantityBody(2))); r.Status != http.StatusUnprocessableEntity || r.ProblemType() != "idempotency-key-reused" {
		t.Fatalf("the refused key with another body: %d %q %s", r.Status, r.ProblemType(), r.Body)
	}

	waitDrained(t, sys, sale.Sale.ID, 2)
	orders := ordersOf(t, sys, sale.Sale.ID)
	if len(orders) != 2 || orders[0].IdempotencyKey != "limit-key-A" || orders[1].IdempotencyKey != "limit-key-C" {
		t.Fatalf("orders in PostgreSQL: %+v, want the ones of keys A and C", orders)
	}
	if st := stockOf(t, sys, sale); st.Remaining != 7 || st.Sold != 3 || st.Buyers[shopper.ID.String()] != "3" || st.Reservations != 2 {
		t.Fatalf("stock: %+v, want 3 taken by keys A and C", st)
	}
}

// TestIdempotencyNotStartedIsNotRecorded: "not started yet" is no final answer for a key: the same key
// buys once the sale opens.
func TestIdempotencyNotStartedIsNotRecorded(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	token := sys.TokenFor(t, shopper)
	// Opens in an hour; the admin then moves the start to now, so no clock race decides the test.
	sale := sys.CreateSale(t, 10, 2, time.Hour, time.Hour)
	_, adminToken := sys.Admin(t)
	const key = "early-bird-key-1"
	req := purchase(sale.Sale.ID, token, key, quantityBody(1))

	for _, attempt := range []string{"first attempt", "same key again"} {
		r := c.Do(t, req)
		if r.Status != http.StatusConflict || r.ProblemType() != "sale-not-active" {
			t.Fatalf("%s before the start: %d %q %s", attempt, r.Status, r.ProblemType(), r.Body)
		}
		if h := r.Header.Values("Idempotent-Replayed"); len(h) != 0 {
			t.Fatalf("%s: a not-started refusal is replayed (%q), so it was recorded", attempt, h)
		}
	}
	if keys := testutil.Keys(context.Background(), sys.Redis, sys.Config.RedisPrefix+":idem:*"); len(keys) != 0 {
		t.Fatalf("idempotency records kept for a not-started refusal: %v", keys)
	}

	open := c.Do(t, testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + sale.Sale.ID.String(), Token: adminToken,
		Body: map[string]any{"startsAt": time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)}})
	if open.Status != http.StatusOK || open.JSON(t)["status"] != "active" {
		t.Fatalf("open the sale now: %d %s", open.Status, open.Body)
	}
	bought := c.Do(t, req)
	if bought.Status != http.StatusAccepted || bought.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the same key once the sale started: %d %q %s", bought.Status, bought.Header.Get("Idempotent-Replayed"), bought.Body)
	}
	if r := c.Do(t, req); r.Status != http.StatusAccepted || !bytes.Equal(r.Body, bought.Body) || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the key now replays the purchase: %d %q %s", r.Status, r.Header.Get("Idempotent-Replayed"), r.Body)
	}

	waitDrained(t, sys, sale.Sale.ID, 1)
	if orders := ordersOf(t, sys, sale.Sale.ID); len(orders) != 1 || orders[0].ID.String() != orderID(t, bought) || orders[0].IdempotencyKey != key {
		t.Fatalf("orders in PostgreSQL: %+v, want exactly %s", orders, orderID(t, bought))
	}
	if st := stockOf(t, sys, sale); st.Remaining != 9 || st.Sold != 1 || st.Reservations != 1 {
		t.Fatalf("stock: %+v, want 1 taken", st)
	}
}
