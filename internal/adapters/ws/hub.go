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
	// SendBuffer is how many events may wait for a client before it counts as slow.
	SendBuffer int
	// PingInterval is how often a client is pinged; one that does not answer within
	// PongTimeout (PingInterval when zero) is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// OriginPatterns are the other origins (host patterns) allowed to connect; the API's own
	// origin always is.
	OriginPatterns []string
}

// Identity is who a connection belongs to: a tenant, and a user if authenticated.
type Identity struct {
	TenantID uuid.UUID
	UserID   *uuid.UUID
}

// Hub holds one node's connections.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.RWMutex
	clients map[*client]struct{}
	count   atomic.Int64
	dropped atomic.Int64
	sent    atomic.Int64
}

// NewHub builds an empty hub.
func NewHub(cfg Config, log *slog.Logger) *Hub {
	return &Hub{cfg: cfg, log: log, clients: map[*client]struct{}{}}
}

type client struct {
	id   Identity
	send chan []byte
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	all   bool
	sales map[uuid.UUID]bool
}

func (c *client) wants(sale uuid.UUID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all || c.sales[sale]
}

func (c *client) close() { c.once.Do(func() { close(c.done) }) }

// Connections is how many clients this node holds.
func (h *Hub) Connections() int { return int(h.count.Load()) }

// Dropped is how many slow clients were dropped since start (each with an event it did not get).
func (h *Hub) Dropped() int { return int(h.dropped.Load()) }

// Sent is how many events were written to clients since start.
func (h *Hub) Sent() int { return int(h.sent.Load()) }

// Deliver fans an event out to this node's matching clients without ever blocking: a client
// whose buffer is full is dropped.
func (h *Hub) Deliver(e Event) {
	msg, err := json.Marshal(wire{Type: e.Type, SaleID: e.SaleID, Data: e.Data, TS: e.TS})
	if err != nil {
		h.log.Warn("live event not encodable", "err", err)
		return
	}
	var slow []*client
	h.mu.RLock()
	for c := range h.clients {
		if c.id.TenantID != e.TenantID || !c.wants(e.SaleID) {
			continue
		}
		if e.UserID != nil && (c.id.UserID == nil || *c.id.UserID != *e.UserID) {
			continue
		}
		select {
		case c.send <- msg:
		default:
			slow = append(slow, c)
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
	return true
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.count.Store(int64(len(h.clients)))
	}
	h.mu.Unlock()
	c.close()
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
	c := &client{id: id, send: make(chan []byte, h.cfg.SendBuffer), done: make(chan struct{}),
		all: len(sales) == 0, sales: map[uuid.UUID]bool{}}
	for _, s := range sales {
		c.sales[s] = true
	}
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
		c.mu.Lock()
		switch {
		case s.SaleID == "*":
			c.all = s.Action == "subscribe"
			if !c.all {
				c.sales = map[uuid.UUID]bool{}
			}
		default:
			if id, err := uuid.Parse(s.SaleID); err == nil {
				if s.Action == "subscribe" {
					c.sales[id] = true
				} else if s.Action == "unsubscribe" {
					delete(c.sales, id)
				}
			}
		}
		c.mu.Unlock()
	}
}

func (h *Hub) pongTimeout() time.Duration {
	if h.cfg.PongTimeout > 0 {
		return h.cfg.PongTimeout
	}
	return h.cfg.PingInterval
}

// write sends events and pings; a failed write or an unanswered ping ends the connection.
func (h *Hub) write(ctx context.Context, cancel context.CancelFunc, conn *websocket.Conn, c *client) {
	defer cancel()
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			// Dropped as slow. Say so here, while the connection is up: once this returns,
			// cancel tears it down and Serve's own Close can no longer send the reason.
			_ = conn.Close(websocket.StatusPolicyViolation, "too slow: events were dropped")
			return
		case msg := <-c.send:
			wctx, wcancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
			err := conn.Write(wctx, websocket.MessageText, msg)
			wcancel()
			if err != nil {
				return
			}
			h.sent.Add(1)
		case <-ping.C:
			pctx, pcancel := context.WithTimeout(ctx, h.pongTimeout())
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		}
	}
}
