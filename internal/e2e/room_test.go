package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

func queue(t *testing.T, c *testutil.Client, method, token string, saleID uuid.UUID) testutil.Response {
	t.Helper()
	return c.Do(t, testutil.Request{Method: method, Path: "/v1/sales/" + saleID.String() + "/queue", Token: token})
}

// TestWaitingRoomThroughHTTP: a sale with a waiting room, in one process running the API and the
// worker (as `flashsale all`). Shoppers join before the start; a purchase without an admission
// is 403 admission-required; at the start the room admits only as many as the stock serves,
// tells the admitted shopper over the WebSocket and the rest that it is likely sold out; the
// admitted buy once each; the sell-out closes the room for everyone still waiting.
func TestWaitingRoomThroughHTTP(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Configure: func(c *config.Config) {
		c.RoomAdmitInterval = 50 * time.Millisecond
	}})
	c := testutil.NewClient(sys.URL)
	_, admin := sys.Admin(t)
	start := time.Now().Add(2 * time.Second).UTC()
	r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: admin, Body: map[string]any{
		"name": "Room drop", "priceCents": 1000, "currency": "EUR", "totalStock": 3, "perUserLimit": 1,
		"startsAt": start.Format(time.RFC3339Nano), "endsAt": start.Add(time.Hour).Format(time.RFC3339Nano),
		"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": 100, "admissionTtl": 60},
	}})
	if r.Status != http.StatusCreated || !strings.Contains(string(r.Body), `"waitingRoom":{"admissionTtl":60,"admitPerSecond":100,"enabled":true}`) {
		t.Fatalf("create sale with a room: %d %s", r.Status, r.Body)
	}
	saleID := uuid.MustParse(r.JSON(t)["id"].(string))

	users := sys.CreateUsers(t, 6, domain.RoleShopper)
	tokens := make([]string, len(users))
	for i, u := range users {
		tokens[i] = sys.TokenFor(t, u)
		r := queue(t, c, "POST", tokens[i], saleID)
		if r.Status != http.StatusOK || r.JSON(t)["state"] != "waiting" || r.JSON(t)["drawn"] != false || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("join #%d: %d %s", i, r.Status, r.Body)
		}
	}
	again := queue(t, c, "POST", tokens[0], saleID)
	if again.JSON(t)["ticket"] != queue(t, c, "POST", tokens[0], saleID).JSON(t)["ticket"] {
		t.Fatal("joining twice gave another place")
	}
	if r := queue(t, c, "GET", sys.TokenFor(t, sys.CreateUsers(t, 1, domain.RoleShopper)[0]), saleID); r.Status != http.StatusNotFound || r.ProblemType() != "not-in-queue" {
		t.Fatalf("status of a stranger: %d %s", r.Status, r.Body)
	}
	conns := make([]*liveConn, len(users))
	for i := range users {
		conns[i] = dialLive(t, sys.URL, "", http.Header{"Cookie": {"fs_access=" + tokens[i]}})
	}
	if r := buy(t, c, tokens[0], saleID, "room-early-0001", 1); r.Status != http.StatusForbidden || r.ProblemType() != "admission-required" {
		t.Fatalf("purchase without an admission: %d %s", r.Status, r.Body)
	}

	// At the start: 3 units at 1 each, 3 admitted, 3 waiting told it is likely sold out.
	var admitted, waiting []int
	testutil.WaitFor(t, 10*time.Second, "three admissions", func() bool {
		admitted, waiting = nil, nil
		for i := range users {
			switch queue(t, c, "GET", tokens[i], saleID).JSON(t)["state"] {
			case "admitted":
				admitted = append(admitted, i)
			case "waiting":
				waiting = append(waiting, i)
			}
		}
		return len(admitted) == 3
	})
	if len(waiting) != 3 {
		t.Fatalf("admitted %v, waiting %v", admitted, waiting)
	}
	for _, i := range waiting {
		st := queue(t, c, "GET", tokens[i], saleID).JSON(t)
		if st["likelySoldOut"] != true || st["drawn"] != true || st["position"] == nil {
			t.Fatalf("a waiting shopper's status: %v", st)
		}
	}
	for _, i := range admitted {
		m := conns[i].await(domain.LiveQueueAdmitted, func(m liveMessage) bool { return m.SaleID == saleID.String() })
		if !strings.Contains(string(m.Data), "expiresAt") {
			t.Fatalf("queue:admitted %s", m.Data)
		}
		if r := buy(t, c, tokens[i], saleID, "room-buy-"+users[i].ID.String(), 1); r.Status != http.StatusAccepted {
			t.Fatalf("admitted purchase: %d %s", r.Status, r.Body)
		}
		if i != admitted[len(admitted)-1] { // (after the last unit: sold out, answered first)
			if r := buy(t, c, tokens[i], saleID, "room-again-"+users[i].ID.String(), 1); r.Status != http.StatusForbidden ||
				r.ProblemType() != "admission-required" {
				t.Fatalf("second purchase on one admission: %d %s", r.Status, r.Body)
			}
		}
	}
	// Sold out: every waiting client is told the room closed, and polling says so.
	for _, i := range waiting {
		conns[i].await(domain.LiveQueueClosed, func(m liveMessage) bool {
			return m.SaleID == saleID.String() && strings.Contains(string(m.Data), `"reason":"sold_out"`)
		})
		if st := queue(t, c, "GET", tokens[i], saleID).JSON(t); st["state"] != "closed" {
			t.Fatalf("a waiting shopper after the sell-out: %v", st)
		}
		if r := buy(t, c, tokens[i], saleID, "room-late-"+users[i].ID.String(), 1); r.Status != http.StatusConflict ||
			r.ProblemType() != "sold-out" {
			t.Fatalf("purchase of a waiting shopper after the sell-out: %d %s, want sold-out", r.Status, r.Body)
		}
	}
	// The room may find its rate itself (autoRate), admitPerSecond its ceiling.
	r = c.Do(t, testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID.String(), Token: admin, Body: map[string]any{
		"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": 100, "admissionTtl": 60, "autoRate": true},
	}})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"waitingRoom":{"admissionTtl":60,"admitPerSecond":100,"autoRate":true,"enabled":true}`) {
		t.Fatalf("turn on the automatic rate: %d %s", r.Status, r.Body)
	}
}

// TestWaitingRoomAcrossNodesOfAShardedSale: two API nodes on one Redis and database (the worker
// in A only), a sale of 4 units in 4 shards (the admission pass sums the shards' stock): places
// and admissions are the same whichever node a shopper asks; an admin raising the stock after
// the sell-out reopens the room and admits the next in the same order.
func TestWaitingRoomAcrossNodesOfAShardedSale(t *testing.T) {
	t.Parallel()
	fast := func(c *config.Config) { c.RoomAdmitInterval = 50 * time.Millisecond }
	a := testutil.StartSystem(t, testutil.SystemOptions{Configure: fast})
	b := secondNode(t, a, testutil.SystemOptions{NoWorker: true, Configure: fast})
	ca, cb := testutil.NewClient(a.URL), testutil.NewClient(b.URL)
	_, admin := a.Admin(t)
	start := time.Now().Add(-time.Second).UTC()
	r := cb.Do(t, testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: admin, Body: map[string]any{
		"name": "Sharded room", "priceCents": 1000, "currency": "EUR", "totalStock": 4, "perUserLimit": 1, "shards": 4,
		"startsAt": start.Format(time.RFC3339Nano), "endsAt": start.Add(time.Hour).Format(time.RFC3339Nano),
		"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": 1000, "admissionTtl": 60},
	}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create sale: %d %s", r.Status, r.Body)
	}
	saleID := uuid.MustParse(r.JSON(t)["id"].(string))
	users := a.CreateUsers(t, 6, domain.RoleShopper)
	tokens := make([]string, len(users))
	nodes := []*testutil.Client{ca, cb}
	for i, u := range users {
		tokens[i] = a.TokenFor(t, u)
		// After the start: places in arrival order, whichever node took them.
		if st := queue(t, nodes[i%2], "POST", tokens[i], saleID).JSON(t); st["state"] != "waiting" && st["state"] != "admitted" {
			t.Fatalf("join #%d: %v", i, st)
		}
	}
	stateOf := func(i int, c *testutil.Client) string {
		return queue(t, c, "GET", tokens[i], saleID).JSON(t)["state"].(string)
	}
	testutil.WaitFor(t, 10*time.Second, "the first four admitted", func() bool {
		for i := range 4 {
			if stateOf(i, nodes[(i+1)%2]) != "admitted" {
				return false
			}
		}
		return true
	})
	for i := 4; i < 6; i++ {
		if sa, sb := stateOf(i, ca), stateOf(i, cb); sa != "waiting" || sb != "waiting" {
			t.Fatalf("user %d: %s through A, %s through B; want waiting on both", i, sa, sb)
		}
	}
	for i := range 4 { // bought through the other node than the one they joined by
		if r := buy(t, nodes[(i+1)%2], tokens[i], saleID, "sharded-room-"+users[i].ID.String(), 1); r.Status != http.StatusAccepted {
			t.Fatalf("purchase %d: %d %s", i, r.Status, r.Body)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the room to close", func() bool { return stateOf(4, cb) == "closed" })

	// Stock comes back: the next in line (user 4, not 5) is admitted.
	patchSale(t, ca, admin, saleID, map[string]any{"totalStock": 5})
	testutil.WaitFor(t, 10*time.Second, "user 4 admitted", func() bool { return stateOf(4, cb) == "admitted" })
	if st := stateOf(5, ca); st != "waiting" {
		t.Fatalf("user 5 after one unit came back: %s, want waiting", st)
	}
	if st := queue(t, ca, "GET", tokens[5], saleID).JSON(t); st["likelySoldOut"] != true || st["position"] != float64(1) {
		t.Fatalf("user 5: %v, want first in line, likely sold out", st)
	}
}
