package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/ws"
	"github.com/flashsale/flashsale/internal/testutil"
)

// hubServer serves a hub over httptest. The identity and the initial subscriptions come from
// the query: ?name=&tenant=&user=&sale= (sale repeatable); the test names each connection so it
// can tell which Serve returned.
type hubServer struct {
	hub *ws.Hub
	srv *httptest.Server

	mu    sync.Mutex
	ended map[string]error // name -> what Serve returned, once it did
}

// smallBufferListener pins the kernel send buffer of every accepted connection to a few KB
// (which also turns autotuning off), so a client that stops reading fills it after a few events
// whatever the machine's TCP settings.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

func newHubServer(t *testing.T, cfg ws.Config) *hubServer {
	t.Helper()
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Hour // no heartbeat unless the test is about it
	}
	hs := &hubServer{hub: ws.NewHub(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))), ended: map[string]error{}}
	hs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id := ws.Identity{TenantID: uuid.MustParse(q.Get("tenant"))}
		if u := q.Get("user"); u != "" {
			uid := uuid.MustParse(u)
			id.UserID = &uid
		}
		var sales []uuid.UUID
		for _, s := range q["sale"] {
			sales = append(sales, uuid.MustParse(s))
		}
		err := hs.hub.Serve(w, r, id, sales)
		hs.mu.Lock()
		hs.ended[q.Get("name")] = err
		hs.mu.Unlock()
		if errors.Is(err, ws.ErrFull) {
			http.Error(w, "full", http.StatusServiceUnavailable)
		}
	}))
	hs.srv.Listener = smallBufferListener{hs.srv.Listener}
	hs.srv.Start()
	t.Cleanup(hs.srv.Close)
	return hs
}

// served reports whether the Serve of the named connection returned, and with what.
func (hs *hubServer) served(name string) (ended bool, err error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	err, ended = hs.ended[name]
	return ended, err
}

type peer struct {
	name   string
	tenant uuid.UUID
	user   *uuid.UUID
	sales  []uuid.UUID
}

func (p peer) query() string {
	q := "?name=" + p.name + "&tenant=" + p.tenant.String()
	if p.user != nil {
		q += "&user=" + p.user.String()
	}
	for _, s := range p.sales {
		q += "&sale=" + s.String()
	}
	return q
}

type wireMsg struct {
	Type   string          `json:"type"`
	SaleID uuid.UUID       `json:"saleId"`
	Data   json.RawMessage `json:"data"`
	TS     time.Time       `json:"ts"`
}

// hubClient is a connected test client. With a reader, every message goes to msgs and the
// error that ended the reading to readErr.
type hubClient struct {
	t       *testing.T
	name    string
	conn    *websocket.Conn
	msgs    chan wireMsg
	readErr chan error
}

// dial connects as p and returns what websocket.Dial returned (the HTTP answer of a refusal).
func (hs *hubServer) dial(t *testing.T, p peer, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.srv.URL, "http")+p.query(), opts)
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// connect dials p and, if reading, starts a read loop.
func (hs *hubServer) connect(t *testing.T, p peer, reading bool, opts *websocket.DialOptions) *hubClient {
	t.Helper()
	c, resp, err := hs.dial(t, p, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", p.name, err, status)
	}
	c.SetReadLimit(1 << 20)
	hc := &hubClient{t: t, name: p.name, conn: c, msgs: make(chan wireMsg, 4096), readErr: make(chan error, 1)}
	if reading {
		go hc.readLoop()
	}
	return hc
}

func (hc *hubClient) readLoop() {
	for {
		_, data, err := hc.conn.Read(context.Background())
		if err != nil {
			hc.readErr <- err
			return
		}
		var m wireMsg
		if err := json.Unmarshal(data, &m); err != nil {
			hc.readErr <- fmt.Errorf("undecodable message %q: %w", data, err)
			return
		}
		hc.msgs <- m
	}
}

// next returns the next message, failing t after 10 s or if the connection ended.
func (hc *hubClient) next() wireMsg {
	hc.t.Helper()
	select {
	case m := <-hc.msgs:
		return m
	case err := <-hc.readErr:
		hc.t.Fatalf("%s: connection ended while a message was awaited: %v", hc.name, err)
	case <-time.After(10 * time.Second):
		hc.t.Fatalf("%s: no message within 10 s", hc.name)
	}
	return wireMsg{}
}

// until collects messages up to and including the first of type marker.
func (hc *hubClient) until(marker string) []string {
	hc.t.Helper()
	var got []string
	for {
		m := hc.next()
		got = append(got, m.Type)
		if m.Type == marker {
			return got
		}
	}
}

// sync returns once the server has handled every message this client sent before: the server
// reads in order and answers the ping only after it handled what came before it.
func (hc *hubClient) sync() {
	hc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hc.conn.Ping(ctx); err != nil {
		hc.t.Fatalf("%s: ping: %v", hc.name, err)
	}
}

func (hc *hubClient) send(v any) {
	hc.t.Helper()
	raw, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hc.conn.Write(ctx, websocket.MessageText, raw); err != nil {
		hc.t.Fatalf("%s: write: %v", hc.name, err)
	}
}

func event(typ string, tenant, sale uuid.UUID, user *uuid.UUID) ws.Event {
	return ws.Event{Type: typ, TenantID: tenant, SaleID: sale, UserID: user, Data: json.RawMessage(`{"n":1}`), TS: time.Now()}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDeliverRoutes: an event reaches exactly the connections of its tenant that follow its
// sale, and a private event only the connections of its user (in that tenant).
func TestDeliverRoutes(t *testing.T) {
	t.Parallel()
	hs := newHubServer(t, ws.Config{SendBuffer: 64})
	t1, t2 := uuid.New(), uuid.New()
	s1, s2 := uuid.New(), uuid.New()
	u1, u2 := uuid.New(), uuid.New()
	peers := []peer{
		{name: "anon-t1", tenant: t1},
		{name: "anon-t2", tenant: t2},
		{name: "anon-t1-s1", tenant: t1, sales: []uuid.UUID{s1}},
		{name: "u1-t1", tenant: t1, user: &u1},
		{name: "u2-t1", tenant: t1, user: &u2},
		{name: "u1-t2", tenant: t2, user: &u1}, // the same user id in another tenant
		{name: "u1-t1-s2", tenant: t1, user: &u1, sales: []uuid.UUID{s2}},
	}
	clients := map[string]*hubClient{}
	for _, p := range peers {
		clients[p.name] = hs.connect(t, p, true, nil)
	}
	if n := hs.hub.Connections(); n != len(peers) {
		t.Fatalf("Connections() = %d, want %d", n, len(peers))
	}

	hs.hub.Deliver(event("t1-s1", t1, s1, nil))
	hs.hub.Deliver(event("t1-s2", t1, s2, nil))
	hs.hub.Deliver(event("t2-s1", t2, s1, nil))
	hs.hub.Deliver(event("t1-s1-u1", t1, s1, &u1))
	hs.hub.Deliver(event("t1-s2-u2", t1, s2, &u2))
	hs.hub.Deliver(event("t1-s2-u1", t1, s2, &u1))
	hs.hub.Deliver(event("t2-s2-u1", t2, s2, &u1))
	// Markers: each connection gets its events in order, so once it has its marker it has
	// everything delivered before.
	hs.hub.Deliver(event("end", t1, s1, nil))
	hs.hub.Deliver(event("end", t1, s2, nil))
	hs.hub.Deliver(event("end", t2, s1, nil))

	want := map[string][]string{
		"anon-t1":    {"t1-s1", "t1-s2", "end", "end"},
		"anon-t2":    {"t2-s1", "end"},
		"anon-t1-s1": {"t1-s1", "end"},
		"u1-t1":      {"t1-s1", "t1-s2", "t1-s1-u1", "t1-s2-u1", "end", "end"},
		"u2-t1":      {"t1-s1", "t1-s2", "t1-s2-u2", "end", "end"},
		"u1-t2":      {"t2-s1", "t2-s2-u1", "end"},
		"u1-t1-s2":   {"t1-s2", "t1-s2-u1", "end"},
	}
	for name, w := range want {
		c := clients[name]
		var got []string
		for range w {
			got = append(got, c.next().Type)
		}
		if !equal(got, w) {
			t.Errorf("%s received %v, want %v", name, got, w)
		}
	}
	// Nothing more: one more marker per tenant is the next message everywhere.
	hs.hub.Deliver(event("last", t1, s1, nil))
	hs.hub.Deliver(event("last", t1, s2, nil))
	hs.hub.Deliver(event("last", t2, s1, nil))
	for name, c := range clients {
		if m := c.next(); m.Type != "last" {
			t.Errorf("%s received %q after its expected events", name, m.Type)
		}
	}
	// The wire format: {type, saleId, data, ts}.
	ts := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	hs.hub.Deliver(ws.Event{Type: "shape", TenantID: t2, SaleID: s1, Data: json.RawMessage(`{"remaining":3}`), TS: ts})
	m := clients["anon-t2"].next()
	if m.Type != "shape" || m.SaleID != s1 || string(m.Data) != `{"remaining":3}` || !m.TS.Equal(ts) {
		t.Fatalf("wire message %+v", m)
	}
	if d := hs.hub.Dropped(); d != 0 {
		t.Fatalf("Dropped() = %d, want 0", d)
	}
	// Sent counts every event written: the expected ones, the "last" markers (4 connections
	// follow t1's s1, 4 its s2, 2 t2's s1) and the shape (t2's 2 connections).
	sent := 4 + 4 + 2 + 2
	for _, w := range want {
		sent += len(w)
	}
	deadline := time.Now().Add(2 * time.Second) // counted once the write returned, after the client may have read it
	for hs.hub.Sent() != sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := hs.hub.Sent(); n != sent {
		t.Fatalf("Sent() = %d, want %d", n, sent)
	}
}

// TestSubscriptionMessages: {"action":"subscribe"|"unsubscribe","saleId":"<uuid>|*"} change what
// a connection follows.
func TestSubscriptionMessages(t *testing.T) {
	t.Parallel()
	hs := newHubServer(t, ws.Config{SendBuffer: 64})
	tenant := uuid.New()
	s1, s2, s3, s4 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	c := hs.connect(t, peer{name: "c", tenant: tenant, sales: []uuid.UUID{s1}}, true, nil)
	deliver := func(typ string, sale uuid.UUID) { hs.hub.Deliver(event(typ, tenant, sale, nil)) }
	expect := func(what string, marker string, want ...string) {
		t.Helper()
		if got := c.until(marker); !equal(got, want) {
			t.Fatalf("%s: received %v, want %v", what, got, want)
		}
	}

	deliver("s2-before", s2)
	deliver("s1", s1)
	expect("initial ?sale=s1", "s1", "s1")

	c.send(map[string]string{"action": "subscribe", "saleId": s2.String()})
	c.sync()
	deliver("s2", s2)
	deliver("s1", s1)
	expect("after subscribe s2", "s1", "s2", "s1")

	c.send(map[string]string{"action": "unsubscribe", "saleId": s1.String()})
	c.send(map[string]string{"action": "subscribe", "saleId": "not-a-uuid"}) // ignored
	c.send("not even an object")                                             // ignored
	c.sync()
	deliver("s1-after-unsubscribe", s1)
	deliver("s3-unfollowed", s3)
	deliver("s2", s2)
	expect("after unsubscribe s1", "s2", "s2")

	c.send(map[string]string{"action": "subscribe", "saleId": "*"})
	c.sync()
	deliver("s3", s3)
	deliver("s2", s2) // subscribed twice over (s2 and *): sent once
	deliver("s1", s1)
	expect("after subscribe *", "s1", "s3", "s2", "s1")

	c.send(map[string]string{"action": "unsubscribe", "saleId": "*"})
	c.sync()
	deliver("s1-none", s1)
	deliver("s2-none", s2)
	deliver("s3-none", s3)
	c.send(map[string]string{"action": "subscribe", "saleId": s4.String()})
	c.sync()
	deliver("s4", s4)
	expect("after unsubscribe *", "s4", "s4")
}

// TestSlowClientDropped: a client that stops reading is dropped once its buffer is full; Deliver
// never waits for it, the reading client gets every event, and the slow one is disconnected.
func TestSlowClientDropped(t *testing.T) {
	t.Parallel()
	hs := newHubServer(t, ws.Config{SendBuffer: 1, WriteTimeout: 2 * time.Second})
	tenant, sale := uuid.New(), uuid.New()
	reader := hs.connect(t, peer{name: "reader", tenant: tenant}, true, nil)
	// The slow client never reads, and its kernel receive buffer is small too.
	slowDialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	slow := hs.connect(t, peer{name: "slow", tenant: tenant}, false, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: slowDialer.DialContext}},
	})

	const events = 1000
	payload := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)
	errc := make(chan error, 1)
	go func() {
		for i := range events {
			hs.hub.Deliver(ws.Event{Type: fmt.Sprintf("e%d", i), TenantID: tenant, SaleID: sale, Data: payload, TS: time.Now()})
			// The reader keeps up: its next event is delivered once it has this one, so its
			// buffer of 1 never overflows.
			select {
			case m := <-reader.msgs:
				if m.Type != fmt.Sprintf("e%d", i) {
					errc <- fmt.Errorf("reader got %s, want e%d", m.Type, i)
					return
				}
			case err := <-reader.readErr:
				errc <- fmt.Errorf("reader disconnected at e%d: %v", i, err)
				return
			case <-time.After(10 * time.Second):
				errc <- fmt.Errorf("reader never got e%d", i)
				return
			}
		}
		errc <- nil
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Deliver blocked: 1000 events were not fanned out within 2 minutes")
	}

	if d := hs.hub.Dropped(); d != 1 {
		t.Fatalf("Dropped() = %d, want 1 (the slow client)", d)
	}
	if n := hs.hub.Connections(); n != 1 {
		t.Fatalf("Connections() = %d, want 1 (the reader)", n)
	}
	if ended, _ := hs.served("reader"); ended {
		t.Fatal("the reading client was disconnected")
	}
	// The slow connection ends on the server (its blocked write times out)...
	testutil.WaitFor(t, 30*time.Second, "the slow client's Serve to return", func() bool {
		ended, _ := hs.served("slow")
		return ended
	})
	// ... and the client, reading at last, finds what fitted in the buffers, then the end.
	go slow.readLoop()
	got := 0
	for {
		select {
		case <-slow.msgs:
			got++
			continue
		case err := <-slow.readErr:
			if strings.Contains(err.Error(), "read limited") {
				t.Fatalf("the slow client's read failed on its own limit, not on the close: %v", err)
			}
			if got >= events {
				t.Fatalf("the slow client got all %d events", got)
			}
			t.Logf("slow client: %d of %d events before the close (%v)", got, events, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("the slow client's connection still open (%d messages read)", got)
		}
		break
	}
	// The reader is still served.
	hs.hub.Deliver(event("after", tenant, sale, nil))
	if m := reader.next(); m.Type != "after" {
		t.Fatalf("reader got %s after the drop", m.Type)
	}
}

// TestDroppedClientToldWhy: a client dropped for falling behind (here: a burst into a buffer of
// 1) receives a close frame with StatusPolicyViolation, not a bare disconnect.
func TestDroppedClientToldWhy(t *testing.T) {
	t.Parallel()
	hs := newHubServer(t, ws.Config{SendBuffer: 1})
	tenant, sale := uuid.New(), uuid.New()
	c := hs.connect(t, peer{name: "c", tenant: tenant}, true, nil)
	for i := 0; i < 100000 && hs.hub.Dropped() == 0; i++ {
		hs.hub.Deliver(event("burst", tenant, sale, nil))
	}
	if d := hs.hub.Dropped(); d != 1 {
		t.Fatalf("Dropped() = %d after the burst, want 1", d)
	}
	for {
		select {
		case <-c.msgs:
			continue
		case err := <-c.readErr:
			if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
				t.Fatalf("dropped client's read ended with %v (close status %d), want status %d", err, st, websocket.StatusPolicyViolation)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the dropped client's connection is still open")
		}
		break
	}
	testutil.WaitFor(t, 10*time.Second, "Serve to return", func() bool { ended, _ := hs.served("c"); return ended })
	if n := hs.hub.Connections(); n != 0 {
		t.Fatalf("Connections() = %d, want 0", n)
	}
}

// TestHeartbeat: a client that does not answer pings is closed within a few intervals; one that
// reads (and so answers) stays.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	// Pings are frequent, their answers get all the time a busy machine may need: the reading
	// client is never closed for being slow to answer, the mute one is, by a deadline.
	const interval, pongTimeout = 200 * time.Millisecond, 2 * time.Second
	hs := newHubServer(t, ws.Config{SendBuffer: 64, PingInterval: interval, PongTimeout: pongTimeout, WriteTimeout: time.Second})
	tenant, sale := uuid.New(), uuid.New()
	alive := hs.connect(t, peer{name: "alive", tenant: tenant}, true, nil)
	// coder/websocket answers pings only while a Read is in progress: this one never reads.
	mute := hs.connect(t, peer{name: "mute", tenant: tenant}, false, nil)
	if n := hs.hub.Connections(); n != 2 {
		t.Fatalf("Connections() = %d, want 2", n)
	}
	testutil.WaitFor(t, 3*(interval+pongTimeout), "the mute client to be closed", func() bool { return hs.hub.Connections() == 1 })
	testutil.WaitFor(t, 5*time.Second, "the mute client's Serve to return", func() bool { ended, _ := hs.served("mute"); return ended })
	// The mute client, reading now, finds its connection gone.
	go mute.readLoop()
	select {
	case <-mute.msgs:
		t.Fatal("the mute client received an event")
	case err := <-mute.readErr:
		t.Logf("mute client: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the mute client's connection is still open")
	}

	// The reading client stays across several intervals.
	time.Sleep(6 * interval)
	if n := hs.hub.Connections(); n != 1 {
		t.Fatalf("Connections() = %d after %s, want 1", n, 6*interval)
	}
	if ended, _ := hs.served("alive"); ended {
		t.Fatal("the client answering pings was closed")
	}
	select {
	case err := <-alive.readErr:
		t.Fatalf("the client answering pings was disconnected: %v", err)
	default:
	}
	hs.hub.Deliver(event("still-here", tenant, sale, nil))
	if m := alive.next(); m.Type != "still-here" {
		t.Fatalf("alive got %s", m.Type)
	}
	if d := hs.hub.Dropped(); d != 0 {
		t.Fatalf("Dropped() = %d: a heartbeat close is not a slow-client drop", d)
	}
}

// TestConnectionCap: Serve refuses with ErrFull beyond MaxConnections, and a freed slot is
// usable again.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	hs := newHubServer(t, ws.Config{SendBuffer: 8, MaxConnections: 2})
	tenant := uuid.New()
	first := hs.connect(t, peer{name: "first", tenant: tenant}, true, nil)
	hs.connect(t, peer{name: "second", tenant: tenant}, true, nil)
	if n := hs.hub.Connections(); n != 2 || !hs.hub.Full() {
		t.Fatalf("Connections() = %d, Full() = %v, want 2, true", n, hs.hub.Full())
	}
	_, resp, err := hs.dial(t, peer{name: "third", tenant: tenant}, nil)
	if err == nil {
		t.Fatal("a third connection was accepted with MaxConnections 2")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third dial: %v (response %+v), want 503", err, resp)
	}
	if ended, serr := hs.served("third"); !ended || !errors.Is(serr, ws.ErrFull) {
		t.Fatalf("Serve for the third connection returned %v (returned: %v), want ErrFull", serr, ended)
	}
	if n := hs.hub.Connections(); n != 2 {
		t.Fatalf("Connections() = %d after the refusal, want 2", n)
	}

	_ = first.conn.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, 5*time.Second, "the first connection to be released", func() bool { return hs.hub.Connections() == 1 })
	hs.connect(t, peer{name: "fourth", tenant: tenant}, true, nil)
	if n := hs.hub.Connections(); n != 2 {
		t.Fatalf("Connections() = %d, want 2", n)
	}
}

// TestSnapshotsPacedPerClient: a client gets a sale's snapshots at most once per SnapshotEvery,
// the newest of those that came meanwhile, while other events go out at once.
func TestSnapshotsPacedPerClient(t *testing.T) {
	t.Parallel()
	const every = 400 * time.Millisecond
	hs := newHubServer(t, ws.Config{SendBuffer: 64, SnapshotEvery: every})
	tenant, sale := uuid.New(), uuid.New()
	c := hs.connect(t, peer{name: "c", tenant: tenant, sales: []uuid.UUID{sale}}, true, nil)
	stock := func(n int) {
		hs.hub.Deliver(ws.Event{Type: "inventory:updated", TenantID: tenant, SaleID: sale, Snapshot: true,
			Data: json.RawMessage(fmt.Sprintf(`{"remaining":%d}`, n)), TS: time.Now()})
	}
	remaining := func(m wireMsg) int {
		var d struct{ Remaining int }
		_ = json.Unmarshal(m.Data, &d)
		return d.Remaining
	}
	stock(10)
	first := c.next()
	began := time.Now()
	if first.Type != "inventory:updated" || remaining(first) != 10 {
		t.Fatalf("first message %+v, want the stock at 10", first)
	}
	stock(9)
	stock(8)
	hs.hub.Deliver(event("order:confirmed", tenant, sale, nil))
	if m := c.next(); m.Type != "order:confirmed" {
		t.Fatalf("got %s, want order:confirmed at once, ahead of the held snapshot", m.Type)
	}
	m := c.next()
	if m.Type != "inventory:updated" || remaining(m) != 8 {
		t.Fatalf("got %+v, want the newest stock (8)", m)
	}
	if waited := time.Since(began); waited < every-50*time.Millisecond {
		t.Fatalf("the second snapshot came %v after the first, want about %v", waited, every)
	}
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected %+v: the replaced snapshot (9) must not be sent", m)
	case <-time.After(every + 100*time.Millisecond):
	}
}
