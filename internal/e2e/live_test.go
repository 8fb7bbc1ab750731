package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

type liveMessage struct {
	Type   string          `json:"type"`
	SaleID string          `json:"saleId"`
	Data   json.RawMessage `json:"data"`
	TS     time.Time       `json:"ts"`
}

// liveConn is a WebSocket client that records what it receives.
type liveConn struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan liveMessage
	seen []liveMessage // received, in order
}

func dialLive(t *testing.T, baseURL, query string, header http.Header) *liveConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/v1/ws"+query, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial /v1/ws%s: %v (status %d)", query, err, status)
	}
	lc := &liveConn{t: t, conn: c, msgs: make(chan liveMessage, 1000)}
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				close(lc.msgs)
				return
			}
			var m liveMessage
			if json.Unmarshal(data, &m) == nil {
				lc.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(websocket.StatusNormalClosure, "") })
	return lc
}

// await returns the first message, received before or within 20 s, of type typ for which
// match holds.
func (l *liveConn) await(typ string, match func(liveMessage) bool) liveMessage {
	l.t.Helper()
	ok := func(m liveMessage) bool { return m.Type == typ && (match == nil || match(m)) }
	for _, m := range l.seen {
		if ok(m) {
			return m
		}
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, open := <-l.msgs:
			if !open {
				l.t.Fatalf("connection closed while waiting for %s", typ)
			}
			l.seen = append(l.seen, m)
			if ok(m) {
				return m
			}
		case <-deadline:
			l.t.Fatalf("no %s within 20 s (got %d other messages)", typ, len(l.seen))
		}
	}
}

// drain takes in what has arrived so far.
func (l *liveConn) drain() []liveMessage {
	for {
		select {
		case m, open := <-l.msgs:
			if !open {
				return l.seen
			}
			l.seen = append(l.seen, m)
		default:
			return l.seen
		}
	}
}

// TestLiveEventsReachClients: sale:started at the start time, inventory:updated after a
// purchase, order:confirmed to the buyer once durable, sale:ended when the last unit sells.
func TestLiveEventsReachClients(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	anon := dialLive(t, sys.URL, "", nil)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	token := sys.TokenFor(t, shopper)
	buyerConn := dialLive(t, sys.URL, "", http.Header{"Cookie": {"fs_access=" + token}})

	sale := sys.CreateSale(t, 2, 2, 1500*time.Millisecond, time.Hour)
	saleID := sale.Sale.ID.String()
	started := anon.await(domain.LiveSaleStarted, func(m liveMessage) bool { return m.SaleID == saleID })
	if !strings.Contains(string(started.Data), `"status":"active"`) {
		t.Fatalf("sale:started data %s", started.Data)
	}
	r := buy(t, c, token, sale.Sale.ID, "live-purchase-1", 2)
	if r.Status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", r.Status, r.Body)
	}
	inv := anon.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == saleID })
	if !strings.Contains(string(inv.Data), `"remaining":0`) {
		t.Fatalf("inventory:updated %s", inv.Data)
	}
	anon.await(domain.LiveSaleEnded, func(m liveMessage) bool {
		return m.SaleID == saleID && strings.Contains(string(m.Data), `"reason":"sold_out"`)
	})
	confirmed := buyerConn.await(domain.LiveOrderConfirmed, nil)
	if !strings.Contains(string(confirmed.Data), r.JSON(t)["id"].(string)) {
		t.Fatalf("order:confirmed %s", confirmed.Data)
	}
	// The anonymous connection never sees anyone's order.
	for _, m := range anon.drain() {
		if m.Type == domain.LiveOrderConfirmed {
			t.Fatalf("a private event reached an anonymous client: %s", m.Data)
		}
	}
}
