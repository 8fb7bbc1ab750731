// Package ws pushes live events to browsers over WebSocket (coder/websocket). One Hub per API
// node holds its connections; events from every node arrive through Redis pub/sub and fan out
// here. A slow client is dropped, never allowed to hold the fan-out up.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// Event is a live event as the hub fans it out.
type Event struct {
	Type     string
	TenantID uuid.UUID
	SaleID   uuid.UUID
	// UserID, if set, makes the event private to that user's connections.
	UserID *uuid.UUID
	Data   json.RawMessage
	TS     time.Time
	// Snapshot: the event states the whole of something (a sale's stock, a waiting room's
	// figures), so a newer one of the same type and sale replaces one a client has not been sent
	// yet, instead of queueing behind it.
	Snapshot bool
}

// wire is what a client receives: {type, saleId, data, ts}.
type wire struct {
	Type   string          `json:"type"`
	SaleID uuid.UUID       `json:"saleId"`
	Data   json.RawMessage `json:"data"`
	TS     time.Time       `json:"ts"`
}

// Config tunes the hub.
type Config struct {
	// MaxConnections caps this node's connections; beyond it new ones are refused (503).
	MaxConnections int
	// SendBuffer is how many events may wait for a client before it counts as slow (snapshots
	// replaced by newer ones do not count).
	SendBuffer int
	// PingInterval is how often a client is pinged; one that does not answer within
	// PongTimeout (PingInterval when zero) is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds the writing of what waited for a client (up to SendBuffer events).
	WriteTimeout time.Duration
	// SnapshotEvery spaces the snapshots written to one client (0: as they come): a newer one
	// arriving meanwhile replaces the one held back, so the client gets the newest at most once
	// per interval, while other events go out at once. With thousands of clients on a sale
	// whose stock changes constantly, this bounds the node's writes per client and second.
	SnapshotEvery time.Duration
	// OriginPatterns are the other origins (host patterns) allowed to connect; the API's own
	// origin always is.
	OriginPatterns []string
}

// Identity is who a connection belongs to: a tenant, and a user if authenticated.
type Identity struct {
	TenantID uuid.UUID
	UserID   *uuid.UUID
}

// Hub holds one node's connections, indexed by what they listen to, so that an event costs the
// clients it goes to and not every client of the node: a waiting room's sale has thousands of
// clients, and each of its admissions is a private event to one of them.
type Hub struct {
	cfg Config
	log *slog.Logger
	// mu guards the clients, the indexes and every client's subscriptions (all, sales).
	mu      sync.RWMutex
	clients map[*client]struct{}
	// bySale are the clients subscribed to a sale by its id; allOf those subscribed to every
	// sale of a tenant; byUser the clients of an authenticated user.
	bySale  map[uuid.UUID]map[*client]struct{}
	allOf   map[uuid.UUID]map[*client]struct{}
	byUser  map[uuid.UUID]map[*client]struct{}
	count   atomic.Int64
	dropped atomic.Int64
	sent    atomic.Int64
}

// NewHub builds an empty hub.
func NewHub(cfg Config, log *slog.Logger) *Hub {
	return &Hub{cfg: cfg, log: log, clients: map[*client]struct{}{}, bySale: map[uuid.UUID]map[*client]struct{}{},
		allOf: map[uuid.UUID]map[*client]struct{}{}, byUser: map[uuid.UUID]map[*client]struct{}{}}
}

type client struct {
	id Identity
	// queue holds the events waiting for the writer (under qmu); wake tells it there are some.
	qmu   sync.Mutex
	queue []queued
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once

	// all and sales are the client's subscriptions (under the hub's mu): every sale of its
	// tenant, or these.
	all   bool
	sales map[uuid.UUID]bool
}

// wants reports whether c listens to sale (the hub's mu held).
func (c *client) wants(sale uuid.UUID) bool { return c.all || c.sales[sale] }

// queued is an encoded event waiting for a client; a snapshot's key is its type and sale.
type queued struct {
	msg      []byte
	snapshot bool
	typ      string
	sale     uuid.UUID
}

func newClient(id Identity, sales []uuid.UUID) *client {
	c := &client{id: id, wake: make(chan struct{}, 1), done: make(chan struct{}), all: len(sales) == 0, sales: map[uuid.UUID]bool{}}
	for _, s := range sales {
		c.sales[s] = true
	}
	return c
}

// offer queues q for c without blocking: a snapshot replaces a waiting one of its type and
// sale. False if c already has limit events waiting (it is slow).
func (c *client) offer(q queued, limit int) bool {
	c.qmu.Lock()
	if q.snapshot {
		for i := range c.queue {
			if w := &c.queue[i]; w.snapshot && w.typ == q.typ && w.sale == q.sale {
				w.msg = q.msg
				c.qmu.Unlock()
				return true
			}
		}
	}
	if len(c.queue) >= limit {
		c.qmu.Unlock()
		return false
	}
	c.queue = append(c.queue, q)
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer is told already
	}
	return true
}

// take hands the waiting events to the writer, giving back spare, the slice it wrote last.
// Unless snapshots is set, snapshots stay queued (held: true if any did).
func (c *client) take(spare []queued, snapshots bool) (batch []queued, held bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if snapshots {
		batch = c.queue
		c.queue = spare[:0]
		return batch, false
	}
	batch, kept := spare[:0], c.queue[:0]
	for _, q := range c.queue {
		if q.snapshot {
			kept = append(kept, q)
		} else {
			batch = append(batch, q)
		}
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	return batch, len(kept) > 0
}

func (c *client) close() { c.once.Do(func() { close(c.done) }) }

// Connections is how many clients this node holds.
func (h *Hub) Connections() int { return int(h.count.Load()) }

// Dropped is how many slow clients were dropped since start (each with an event it did not get).
func (h *Hub) Dropped() int { return int(h.dropped.Load()) }

// Sent is how many events were written to clients since start.
func (h *Hub) Sent() int { return int(h.sent.Load()) }

// Deliver fans an event out to this node's matching clients without ever blocking: a client
// with SendBuffer events waiting already is dropped.
func (h *Hub) Deliver(e Event) {
	msg, err := json.Marshal(wire{Type: e.Type, SaleID: e.SaleID, Data: e.Data, TS: e.TS})
	if err != nil {
		h.log.Warn("live event not encodable", "err", err)
		return
	}
	var slow []*client
	q := queued{msg: msg, snapshot: e.Snapshot, typ: e.Type, sale: e.SaleID}
	send := func(c *client) {
		if !c.offer(q, max(h.cfg.SendBuffer, 1)) {
			slow = append(slow, c)
		}
	}
	h.mu.RLock()
	switch {
	case e.UserID != nil:
		for c := range h.byUser[*e.UserID] {
			if c.id.TenantID == e.TenantID && c.wants(e.SaleID) {
				send(c)
			}
		}
	default:
		for c := range h.allOf[e.TenantID] {
			send(c)
		}
		for c := range h.bySale[e.SaleID] {
			if c.id.TenantID == e.TenantID && !c.all { // one subscribed to all had it above
				send(c)
			}
		}
	}
	h.mu.RUnlock()
	for _, c := range slow {
		h.dropped.Add(1)
		h.remove(c)
	}
}

func (h *Hub) add(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg.MaxConnections > 0 && len(h.clients) >= h.cfg.MaxConnections {
		return false
	}
	h.clients[c] = struct{}{}
	h.count.Store(int64(len(h.clients)))
	if c.id.UserID != nil {
		index(h.byUser, *c.id.UserID, c, true)
	}
	if c.all {
		index(h.allOf, c.id.TenantID, c, true)
	}
	for s := range c.sales {
		index(h.bySale, s, c, true)
	}
	return true
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.count.Store(int64(len(h.clients)))
		if c.id.UserID != nil {
			index(h.byUser, *c.id.UserID, c, false)
		}
		index(h.allOf, c.id.TenantID, c, false)
		for s := range c.sales {
			index(h.bySale, s, c, false)
		}
	}
	h.mu.Unlock()
	c.close()
}

// index adds c to (or removes it from) the clients under k (the hub's mu held for writing).
func index(m map[uuid.UUID]map[*client]struct{}, k uuid.UUID, c *client, add bool) {
	set := m[k]
	switch {
	case add && set == nil:
		m[k] = map[*client]struct{}{c: {}}
	case add:
		set[c] = struct{}{}
	case set != nil:
		delete(set, c)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// subscribe applies a client's subscription change: sale to one sale, or nil to all of them.
func (h *Hub) subscribe(c *client, sale *uuid.UUID, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return // gone
	}
	switch {
	case sale != nil:
		if on == c.sales[*sale] {
			return
		}
		if on {
			c.sales[*sale] = true
		} else {
			delete(c.sales, *sale)
		}
		index(h.bySale, *sale, c, on)
	case on:
		c.all = true
		index(h.allOf, c.id.TenantID, c, true)
	default: // unsubscribing from all ends every subscription
		c.all = false
		index(h.allOf, c.id.TenantID, c, false)
		for s := range c.sales {
			index(h.bySale, s, c, false)
		}
		c.sales = map[uuid.UUID]bool{}
	}
}

// Full reports whether the node is at its connection cap.
func (h *Hub) Full() bool {
	return h.cfg.MaxConnections > 0 && h.Connections() >= h.cfg.MaxConnections
}

// subscription is what a client may send: {"action":"subscribe","saleId":"<uuid>|*"}.
type subscription struct {
	Action string `json:"action"`
	SaleID string `json:"saleId"`
}

// ErrFull is returned by Serve when the node is at its connection cap.
var ErrFull = errors.New("connection cap reached")

// Serve upgrades the request and runs the connection until it ends. sales are the initial
// subscriptions (none: every sale of the tenant).
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, id Identity, sales []uuid.UUID) error {
	c := newClient(id, sales)
	if !h.add(c) {
		return ErrFull
	}
	defer h.remove(c)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.OriginPatterns})
	if err != nil {
		return nil // Accept wrote the answer (403 for a foreign origin, 426, ...)
	}
	conn.SetReadLimit(4096)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go h.write(ctx, cancel, conn, c)
	h.read(ctx, conn, c)
	select {
	case <-c.done: // dropped as slow
		_ = conn.Close(websocket.StatusPolicyViolation, "too slow: events were dropped")
	default:
		_ = conn.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

// read handles subscription changes; it also keeps the connection's pong handling going.
func (h *Hub) read(ctx context.Context, conn *websocket.Conn, c *client) {
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var s subscription
		if json.Unmarshal(data, &s) != nil {
			continue
		}
		if s.Action != "subscribe" && s.Action != "unsubscribe" {
			continue
		}
		on := s.Action == "subscribe"
		if s.SaleID == "*" {
			h.subscribe(c, nil, on)
		} else if id, err := uuid.Parse(s.SaleID); err == nil {
			h.subscribe(c, &id, on)
		}
	}
}

func (h *Hub) pongTimeout() time.Duration {
	if h.cfg.PongTimeout > 0 {
		return h.cfg.PongTimeout
	}
	return h.cfg.PingInterval
}

// write sends events and pings; a failed write or an unanswered ping ends the connection.
// What waited is written together, under one WriteTimeout.
func (h *Hub) write(ctx context.Context, cancel context.CancelFunc, conn *websocket.Conn, c *client) {
	defer cancel()
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	var batch []queued
	// Snapshots wait until nextSnapshot (SnapshotEvery after the last one written); due fires
	// then if one is held.
	var nextSnapshot time.Time
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	for {
		var wake bool
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			// Dropped as slow. Say so here, while the connection is up: once this returns,
			// cancel tears it down and Serve's own Close can no longer send the reason.
			_ = conn.Close(websocket.StatusPolicyViolation, "too slow: events were dropped")
			return
		case <-c.wake:
			wake = true
		case <-due.C:
			wake = true
		case <-ping.C:
			pctx, pcancel := context.WithTimeout(ctx, h.pongTimeout())
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		}
		if !wake {
			continue
		}
		now := time.Now()
		snapshots := !now.Before(nextSnapshot)
		var held bool
		batch, held = c.take(batch, snapshots)
		if held {
			due.Reset(nextSnapshot.Sub(now))
		}
		if !h.writeBatch(ctx, conn, batch) {
			return
		}
		for _, q := range batch {
			if q.snapshot && h.cfg.SnapshotEvery > 0 {
				nextSnapshot = now.Add(h.cfg.SnapshotEvery)
				break
			}
		}
	}
}

// writeBatch writes what waited for a client under one WriteTimeout; false if a write failed.
func (h *Hub) writeBatch(ctx context.Context, conn *websocket.Conn, batch []queued) bool {
	if len(batch) == 0 {
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
	defer cancel()
	for i := range batch {
		if err := conn.Write(wctx, websocket.MessageText, batch[i].msg); err != nil {
			return false
		}
		batch[i].msg = nil
		h.sent.Add(1)
	}
	return true
}
