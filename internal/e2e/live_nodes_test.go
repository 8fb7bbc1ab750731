package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// secondNode starts another node on a's PostgreSQL and Redis (same prefix, same queues).
func secondNode(t *testing.T, a *testutil.System, o testutil.SystemOptions) *testutil.System {
	t.Helper()
	o.DatabaseURL = a.Config.DatabaseURL
	o.Redis = &testutil.Redis{Prefix: a.Config.RedisPrefix, Queue: a.Config.OrderQueue}
	b := testutil.StartSystem(t, o)
	if b.Config.SaleEventsQueue != a.Config.SaleEventsQueue {
		t.Fatalf("the nodes use different sale-event queues: %s, %s", a.Config.SaleEventsQueue, b.Config.SaleEventsQueue)
	}
	return b
}

// liveData is the data of any live event (the fields of its type are set).
type liveData struct {
	TotalStock int       `json:"totalStock"`
	Remaining  int       `json:"remaining"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason"`
	Name       string    `json:"name"`
	StartsAt   time.Time `json:"startsAt"`
	EndsAt     time.Time `json:"endsAt"`
	OrderID    string    `json:"orderId"`
	Quantity   int       `json:"quantity"`
}

func (m liveMessage) data(t *testing.T) liveData {
	t.Helper()
	var d liveData
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("%s data %s: %v", m.Type, m.Data, err)
	}
	return d
}

// of selects the messages of type typ (any type if "") about sale (any sale if "").
func of(msgs []liveMessage, typ, sale string) []liveMessage {
	var out []liveMessage
	for _, m := range msgs {
		if (typ == "" || m.Type == typ) && (sale == "" || m.SaleID == sale) {
			out = append(out, m)
		}
	}
	return out
}

// send writes a client message ({"action":..., "saleId":...}).
func (l *liveConn) send(v any) {
	l.t.Helper()
	raw, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.conn.Write(ctx, websocket.MessageText, raw); err != nil {
		l.t.Fatalf("send %s: %v", raw, err)
	}
}

// sync returns once the server has handled everything this client sent: it reads a
// connection's frames in order and answers a ping only once it handled what came before.
func (l *liveConn) sync() {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.conn.Ping(ctx); err != nil {
		l.t.Fatalf("ping: %v", err)
	}
}

// dialLiveRefused dials /v1/ws expecting the upgrade to be refused, and returns the HTTP answer.
func dialLiveRefused(t *testing.T, baseURL, query string, header http.Header) testutil.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/v1/ws"+query, &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		_ = c.CloseNow()
		t.Fatalf("dial /v1/ws%s: the upgrade was accepted", query)
	}
	if resp == nil {
		t.Fatalf("dial /v1/ws%s: no HTTP answer: %v", query, err)
	}
	body, _ := io.ReadAll(resp.Body)
	r := testutil.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	var p struct{ Status int }
	if json.Unmarshal(body, &p) != nil || p.Status != r.Status {
		t.Fatalf("dial /v1/ws%s: %d with body %s", query, r.Status, body)
	}
	return r
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
func cookie(token string) http.Header { return http.Header{"Cookie": {"fs_access=" + token}} }

func patchSale(t *testing.T, c *testutil.Client, adminToken string, saleID uuid.UUID, body map[string]any) testutil.Response {
	t.Helper()
	r := c.Do(t, testutil.Request{Method: "PATCH", Path: "/v1/admin/sales/" + saleID.String(), Token: adminToken, Body: body})
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH sale %s %v: %d %s", saleID, body, r.Status, r.Body)
	}
	return r
}

func confirmedOrders(t *testing.T, msgs []liveMessage) []string {
	t.Helper()
	var ids []string
	for _, m := range of(msgs, domain.LiveOrderConfirmed, "") {
		ids = append(ids, m.data(t).OrderID)
	}
	return ids
}

// TestLiveAcrossNodes: node A serves the WebSocket clients and does nothing else (no worker, no
// purchase goes through it); node B takes the purchases and runs the worker. Everything A's
// clients receive was therefore produced in B's process and crossed Redis pub/sub: the stock
// change and the sell-out (B's API), and the order confirmation (B's worker), which reaches the
// buyer only.
func TestLiveAcrossNodes(t *testing.T) {
	t.Parallel()
	a := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	b := secondNode(t, a, testutil.SystemOptions{})
	cb := testutil.NewClient(b.URL)
	_, adminToken := a.Admin(t)
	users := a.CreateUsers(t, 3, domain.RoleShopper)
	buyer, other, third := a.TokenFor(t, users[0]), a.TokenFor(t, users[1]), a.TokenFor(t, users[2])

	anon := dialLive(t, a.URL, "?tenant="+domain.DefaultTenantSlug, nil)
	buyerA := dialLive(t, a.URL, "", cookie(buyer))
	otherA := dialLive(t, a.URL, "", cookie(other))
	otherB := dialLive(t, b.URL, "", bearer(other))
	thirdB := dialLive(t, b.URL, "", bearer(third))

	sale := a.CreateSale(t, 3, 2, -time.Second, time.Hour)
	barrier := a.CreateSale(t, 1, 1, time.Hour, time.Hour)
	saleID := sale.Sale.ID.String()

	r := buy(t, cb, buyer, sale.Sale.ID, "nodes-buyer", 1)
	if r.Status != http.StatusAccepted {
		t.Fatalf("buy through B: %d %s", r.Status, r.Body)
	}
	buyerOrder := orderID(t, r)
	inv := anon.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == saleID })
	if d := inv.data(t); d.Remaining != 2 || d.TotalStock != 3 || d.Status != "active" {
		t.Fatalf("first inventory:updated on A: %s, want remaining 2 of 3, active", inv.Data)
	}
	confirmed := buyerA.await(domain.LiveOrderConfirmed, nil)
	if d := confirmed.data(t); d.OrderID != buyerOrder || d.Quantity != 1 || d.Status != "confirmed" || confirmed.SaleID != saleID {
		t.Fatalf("order:confirmed on A: %s (sale %s), want order %s, 1 unit, confirmed", confirmed.Data, confirmed.SaleID, buyerOrder)
	}

	// The last two units, through B: the sale sells out.
	r = buy(t, cb, third, sale.Sale.ID, "nodes-third", 2)
	if r.Status != http.StatusAccepted {
		t.Fatalf("second buy through B: %d %s", r.Status, r.Body)
	}
	thirdOrder := orderID(t, r)
	ended := anon.await(domain.LiveSaleEnded, func(m liveMessage) bool { return m.SaleID == saleID })
	if d := ended.data(t); d.Reason != "sold_out" || d.Status != "sold_out" {
		t.Fatalf("sale:ended on A: %s, want reason and status sold_out", ended.Data)
	}
	anon.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == saleID && m.data(t).Remaining == 0 })
	if got := thirdB.await(domain.LiveOrderConfirmed, nil).data(t).OrderID; got != thirdOrder {
		t.Fatalf("order:confirmed to the third user: order %s, want %s", got, thirdOrder)
	}

	// Barrier: an event published after both confirmations. Every connection gets its events in
	// the order Redis published them, so once it has the barrier it has all the earlier ones.
	patchSale(t, cb, adminToken, barrier.Sale.ID, map[string]any{"name": "barrier"})
	conns := map[string]*liveConn{"anonymous on A": anon, "buyer on A": buyerA, "other user on A": otherA,
		"other user on B": otherB, "third user on B": thirdB}
	for name, l := range conns {
		l.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == barrier.Sale.ID.String() })
		got := confirmedOrders(t, l.drain())
		var want []string
		switch name {
		case "buyer on A":
			want = []string{buyerOrder}
		case "third user on B":
			want = []string{thirdOrder}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s received order:confirmed for %v, want %v", name, got, want)
		}
		// Every connection of the tenant saw the public events exactly once.
		if n := len(of(l.seen, domain.LiveSaleEnded, saleID)); n != 1 {
			t.Errorf("%s received %d sale:ended, want 1", name, n)
		}
	}
}

// TestLiveTickets: a one-time ticket from POST /v1/ws/tickets authenticates a connection without
// any token in the URL or a header; it works once; an unknown ticket is refused.
func TestLiveTickets(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	users := sys.CreateUsers(t, 2, domain.RoleShopper)
	token, otherToken := sys.TokenFor(t, users[0]), sys.TokenFor(t, users[1])

	r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/ws/tickets", Token: token})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/ws/tickets: %d %s", r.Status, r.Body)
	}
	var issued struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expiresIn"`
	}
	r.Decode(t, &issued)
	if want := int(app.DefaultSettings().TicketTTL.Seconds()); issued.ExpiresIn != want || issued.Ticket == "" {
		t.Fatalf("ticket answer %s, want a ticket expiring in %d s", r.Body, want)
	}
	if strings.Contains(token, issued.Ticket) || strings.Contains(issued.Ticket, token) {
		t.Fatal("the ticket carries the access token")
	}
	if r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/ws/tickets"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("POST /v1/ws/tickets without a token: %d %s", r.Status, r.Body)
	}

	// No header at all: the ticket alone says who this is.
	ticketQuery := "?ticket=" + url.QueryEscape(issued.Ticket)
	live := dialLive(t, sys.URL, ticketQuery, nil)
	otherConn := dialLive(t, sys.URL, "", cookie(otherToken))

	sale := sys.CreateSale(t, 10, 2, -time.Second, time.Hour)
	r = buy(t, c, otherToken, sale.Sale.ID, "ticket-other", 1)
	if r.Status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", r.Status, r.Body)
	}
	otherOrder := orderID(t, r)
	// The other user's confirmation is published before the ticket holder even buys.
	if got := otherConn.await(domain.LiveOrderConfirmed, nil).data(t).OrderID; got != otherOrder {
		t.Fatalf("other user's order:confirmed for %s, want %s", got, otherOrder)
	}
	r = buy(t, c, token, sale.Sale.ID, "ticket-own", 2)
	if r.Status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", r.Status, r.Body)
	}
	own := orderID(t, r)
	confirmed := live.await(domain.LiveOrderConfirmed, nil)
	if d := confirmed.data(t); d.OrderID != own || d.Quantity != 2 {
		t.Fatalf("order:confirmed on the ticket connection: %s, want order %s of 2", confirmed.Data, own)
	}
	if got := confirmedOrders(t, live.drain()); len(got) != 1 {
		t.Fatalf("the ticket connection received order:confirmed for %v, want only %s", got, own)
	}

	// Once only.
	refused := dialLiveRefused(t, sys.URL, ticketQuery, nil)
	expectProblem(t, "the same ticket again", refused, http.StatusUnauthorized, "unauthenticated")
	if refused.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	garbage := dialLiveRefused(t, sys.URL, "?ticket=not-a-ticket-"+uuid.NewString(), nil)
	expectProblem(t, "a garbage ticket", garbage, http.StatusUnauthorized, "unauthenticated")
	// A bad ticket is not rescued by a good cookie: the ticket, when given, decides.
	withCookie := dialLiveRefused(t, sys.URL, "?ticket=garbage", cookie(token))
	expectProblem(t, "a garbage ticket with a valid cookie", withCookie, http.StatusUnauthorized, "unauthenticated")
}

// TestLiveSaleFilter: ?sale= limits a connection to that sale's events; a subscribe message adds
// another sale, an unsubscribe takes one away.
func TestLiveSaleFilter(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	users := sys.CreateUsers(t, 4, domain.RoleShopper)
	saleA := sys.CreateSale(t, 10, 5, -time.Second, time.Hour)
	saleB := sys.CreateSale(t, 10, 5, -time.Second, time.Hour)
	a, b := saleA.Sale.ID.String(), saleB.Sale.ID.String()
	all := dialLive(t, sys.URL, "", nil)
	onlyA := dialLive(t, sys.URL, "?sale="+a, nil)
	purchases := 0
	buyAndSee := func(user int, sale uuid.UUID, qty, remaining int) {
		t.Helper()
		purchases++
		if r := buy(t, c, sys.TokenFor(t, users[user]), sale, fmt.Sprintf("filter-key-%d", purchases), qty); r.Status != http.StatusAccepted {
			t.Fatalf("buy: %d %s", r.Status, r.Body)
		}
		all.await(domain.LiveInventoryUpdated, func(m liveMessage) bool {
			return m.SaleID == sale.String() && m.data(t).Remaining == remaining
		})
	}

	buyAndSee(0, saleB.Sale.ID, 1, 9) // published first
	buyAndSee(1, saleA.Sale.ID, 1, 9)
	onlyA.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == a && m.data(t).Remaining == 9 })
	for _, m := range onlyA.drain() {
		if m.SaleID != a {
			t.Fatalf("?sale=A received %s for sale %s", m.Type, m.SaleID)
		}
	}

	onlyA.send(map[string]string{"action": "subscribe", "saleId": b})
	onlyA.sync()
	buyAndSee(2, saleB.Sale.ID, 2, 7)
	onlyA.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == b && m.data(t).Remaining == 7 })

	onlyA.send(map[string]string{"action": "unsubscribe", "saleId": a})
	onlyA.sync()
	buyAndSee(3, saleA.Sale.ID, 3, 6) // published before the next one
	buyAndSee(3, saleB.Sale.ID, 1, 6)
	onlyA.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == b && m.data(t).Remaining == 6 })
	if got := of(onlyA.drain(), domain.LiveInventoryUpdated, a); len(got) != 1 {
		t.Fatalf("after unsubscribing from A the connection had %d inventory:updated for A, want 1 (the one before)", len(got))
	}

	bad := dialLiveRefused(t, sys.URL, "?sale=not-a-uuid", nil)
	expectProblem(t, "?sale=not-a-uuid", bad, http.StatusBadRequest, "invalid-request")
}

// TestLiveInventoryCoalesced: a burst of 40 single-unit purchases against a stock of 40 reaches
// a client as a few inventory:updated, never going up, the last one at 0, and one sell-out.
func TestLiveInventoryCoalesced(t *testing.T) {
	t.Parallel()
	const stock = 40
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	_, adminToken := sys.Admin(t)
	sale := sys.CreateSale(t, stock, 1, -time.Second, time.Hour)
	barrier := sys.CreateSale(t, 1, 1, time.Hour, time.Hour)
	saleID := sale.Sale.ID.String()
	shoppers := sys.CreateUsers(t, stock, domain.RoleShopper)
	tokens := make([]string, stock)
	for i, u := range shoppers {
		tokens[i] = sys.TokenFor(t, u)
	}
	live := dialLive(t, sys.URL, "?sale="+saleID, nil)

	start := make(chan struct{})
	statuses := make([]testutil.Response, stock)
	ids := make([]uuid.UUID, stock)
	var wg sync.WaitGroup
	for i := range stock {
		wg.Go(func() {
			<-start
			r := buy(t, c, tokens[i], sale.Sale.ID, fmt.Sprintf("burst-key-%d", i), 1)
			statuses[i] = r
			if r.Status == http.StatusAccepted {
				ids[i] = uuid.MustParse(r.JSON(t)["id"].(string))
			}
		})
	}
	close(start)
	wg.Wait()
	for i, r := range statuses {
		if r.Status != http.StatusAccepted {
			t.Fatalf("purchase %d: %d %s", i, r.Status, r.Body)
		}
	}

	live.await(domain.LiveSaleEnded, func(m liveMessage) bool { return m.SaleID == saleID })
	live.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == saleID && m.data(t).Remaining == 0 })
	// No order fails, so nothing gives stock back and marks the sale changed again.
	waitConfirmed(t, sys, ids)
	// Barrier, twice: the first flush after the purchases may carry the barrier sale and a
	// last mark of this one in any order; the next flush comes after that whole flush.
	live.send(map[string]string{"action": "subscribe", "saleId": barrier.Sale.ID.String()})
	live.sync()
	for _, name := range []string{"barrier 1", "barrier 2"} {
		patchSale(t, c, adminToken, barrier.Sale.ID, map[string]any{"name": name})
		n := len(of(live.drain(), domain.LiveInventoryUpdated, barrier.Sale.ID.String()))
		live.await(domain.LiveInventoryUpdated, func(m liveMessage) bool {
			return m.SaleID == barrier.Sale.ID.String() && len(of(live.seen, domain.LiveInventoryUpdated, barrier.Sale.ID.String())) > n
		})
	}
	msgs := live.drain()

	updates := of(msgs, domain.LiveInventoryUpdated, saleID)
	remaining := make([]int, len(updates))
	for i, m := range updates {
		d := m.data(t)
		remaining[i] = d.Remaining
		if d.TotalStock != stock {
			t.Errorf("inventory:updated %s: totalStock %d, want %d", m.Data, d.TotalStock, stock)
		}
		if i > 0 && remaining[i] > remaining[i-1] {
			t.Errorf("remaining went up: %v", remaining)
		}
	}
	t.Logf("%d purchases -> %d inventory:updated, remaining %v", stock, len(updates), remaining)
	if len(updates) == 0 || len(updates) >= stock {
		t.Fatalf("%d inventory:updated for %d purchases, want between 1 and %d", len(updates), stock, stock-1)
	}
	if last := remaining[len(remaining)-1]; last != 0 {
		t.Fatalf("the last inventory:updated says remaining %d, want 0 (%v)", last, remaining)
	}
	ended := of(msgs, domain.LiveSaleEnded, saleID)
	if len(ended) != 1 || ended[0].data(t).Reason != "sold_out" {
		t.Fatalf("sale:ended events %v, want exactly one with reason sold_out", ended)
	}
}

// TestLiveScheduledSaleEvents: with two worker nodes, a sale's start and end each reach clients
// exactly once, at their time (not before), however often the sale is scheduled; a sale moved
// later starts at the new time only. Both nodes run a worker so that both compete for every
// task.
func TestLiveScheduledSaleEvents(t *testing.T) {
	t.Parallel()
	a := testutil.StartSystem(t, testutil.SystemOptions{})
	var schedulerB ports.SaleScheduler
	b := secondNode(t, a, testutil.SystemOptions{Options: []fx.Option{fx.Populate(&schedulerB)}})
	cb := testutil.NewClient(b.URL)
	_, adminToken := a.Admin(t)
	anonA := dialLive(t, a.URL, "", nil)
	anonB := dialLive(t, b.URL, "", nil)

	timed := a.CreateSale(t, 5, 1, 2*time.Second, 2*time.Second)
	moved := a.CreateSale(t, 5, 1, 3*time.Second, time.Hour)
	barrier := a.CreateSale(t, 1, 1, time.Hour, time.Hour)
	// B schedules the same sale too, as any node touching it may: still one event each.
	if err := schedulerB.ScheduleSale(context.Background(), timed.Sale); err != nil {
		t.Fatalf("scheduling again from B: %v", err)
	}
	newStart := moved.Sale.StartsAt.Add(4 * time.Second)
	r := patchSale(t, cb, adminToken, moved.Sale.ID, map[string]any{"startsAt": newStart.Format(time.RFC3339Nano)})
	var patched struct{ StartsAt time.Time }
	r.Decode(t, &patched)
	if !patched.StartsAt.Equal(newStart) {
		t.Fatalf("PATCH answered startsAt %s, want %s", patched.StartsAt, newStart)
	}
	if time.Now().After(moved.Sale.StartsAt) {
		t.Fatal("the sale was moved only after its old start: the test proves nothing")
	}

	timedID, movedID := timed.Sale.ID.String(), moved.Sale.ID.String()
	for _, l := range []*liveConn{anonA, anonB} {
		started := l.await(domain.LiveSaleStarted, func(m liveMessage) bool { return m.SaleID == timedID })
		if d := started.data(t); d.Status != "active" || started.TS.Before(timed.Sale.StartsAt) || !d.StartsAt.Equal(timed.Sale.StartsAt) {
			t.Fatalf("sale:started %s at %s, want status active no earlier than %s", started.Data, started.TS, timed.Sale.StartsAt)
		}
		ended := l.await(domain.LiveSaleEnded, func(m liveMessage) bool { return m.SaleID == timedID })
		if d := ended.data(t); d.Reason != "ended" || d.Status != "ended" || ended.TS.Before(timed.Sale.EndsAt) {
			t.Fatalf("sale:ended %s at %s, want reason ended no earlier than %s", ended.Data, ended.TS, timed.Sale.EndsAt)
		}
		movedStart := l.await(domain.LiveSaleStarted, func(m liveMessage) bool { return m.SaleID == movedID })
		if d := movedStart.data(t); movedStart.TS.Before(newStart) || !d.StartsAt.Equal(newStart) || d.Status != "active" {
			t.Fatalf("moved sale's sale:started %s at %s, want at or after the new start %s (old %s)",
				movedStart.Data, movedStart.TS, newStart, moved.Sale.StartsAt)
		}
	}

	// Scheduling again once the events fired must not fire them again: B schedules the timed
	// sale once more, and the moved sale, started, gets a later end (which reschedules both of
	// its events).
	if err := schedulerB.ScheduleSale(context.Background(), timed.Sale); err != nil {
		t.Fatalf("scheduling again from B after the end: %v", err)
	}
	patchSale(t, cb, adminToken, moved.Sale.ID, map[string]any{"endsAt": moved.Sale.EndsAt.Add(time.Hour).Format(time.RFC3339Nano)})

	// Every due task has run on one node or the other: only the moved sale's two ends (the old
	// one will find itself stale) and the barrier sale's two events are left.
	inspector := asynq.NewInspectorFromRedisClient(a.Redis)
	testutil.WaitFor(t, 20*time.Second, "the due sale-event tasks to be done", func() bool {
		q, err := inspector.GetQueueInfo(a.Config.SaleEventsQueue)
		return err == nil && q.Pending == 0 && q.Active == 0 && q.Retry == 0 && q.Archived == 0 && q.Scheduled == 4
	})
	// Barrier: an event published after all of them.
	patchSale(t, cb, adminToken, barrier.Sale.ID, map[string]any{"name": "barrier"})
	for name, l := range map[string]*liveConn{"A": anonA, "B": anonB} {
		l.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == barrier.Sale.ID.String() })
		msgs := l.drain()
		if n := len(of(msgs, domain.LiveSaleStarted, timedID)); n != 1 {
			t.Errorf("node %s: %d sale:started for the timed sale, want 1", name, n)
		}
		if n := len(of(msgs, domain.LiveSaleEnded, timedID)); n != 1 {
			t.Errorf("node %s: %d sale:ended for the timed sale, want 1", name, n)
		}
		for _, m := range of(msgs, domain.LiveSaleStarted, movedID) {
			if m.TS.Before(newStart) {
				t.Errorf("node %s: sale:started for the moved sale at %s, before its new start %s", name, m.TS, newStart)
			}
		}
		if n := len(of(msgs, domain.LiveSaleStarted, movedID)); n != 1 {
			t.Errorf("node %s: %d sale:started for the moved sale, want 1", name, n)
		}
		if n := len(of(msgs, "", barrier.Sale.ID.String())) - 1; n != 0 {
			t.Errorf("node %s: %d events for the sale that starts in an hour", name, n)
		}
	}
}

// TestLiveConnectionCap: a node at WS_MAX_CONNECTIONS answers the next upgrade with 503
// problem+json and Retry-After; a freed slot takes a connection again.
func TestLiveConnectionCap(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true,
		Configure: func(c *config.Config) { c.WSMaxConnections = 2 }})
	first := dialLive(t, sys.URL, "", nil)
	dialLive(t, sys.URL, "", nil)
	r := dialLiveRefused(t, sys.URL, "", nil)
	expectProblem(t, "a third connection", r, http.StatusServiceUnavailable, "unavailable")
	if got := r.Header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After %q, want 5", got)
	}

	_ = first.conn.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, 10*time.Second, "the freed slot to take a connection", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(sys.URL, "http")+"/v1/ws", nil)
		if err != nil {
			return false
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		return true
	})
	expectProblem(t, "a third connection again", dialLiveRefused(t, sys.URL, "", nil), http.StatusServiceUnavailable, "unavailable")
}
