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
		if r := buy(t, c, tokens[i], saleID, "room-again-"+users[i].ID.String(), 1); r.Status != http.StatusForbidden {
			t.Fatalf("second purchase on one admission: %d %s", r.Status, r.Body)
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
		if r := buy(t, c, tokens[i], saleID, "room-late-"+users[i].ID.String(), 1); r.Status != http.StatusForbidden {
			t.Fatalf("purchase of a waiting shopper: %d %s", r.Status, r.Body)
		}
	}
}
