package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// problemInFlight is the answer to a key whose first request has not finished (or whose node
// died holding it, until the lease expires).
const problemInFlight = "idempotency-key-in-flight"

// statusUnknown is an accepted order neither PostgreSQL nor Redis knows.
const statusUnknown = "unknown"

// driver is the load: shoppers with their own client IPs buying through the real HTTP API,
// every answer recorded per purchase.
type driver struct {
	apis    []string
	http    *http.Client
	admin   string
	adminMu sync.Mutex // one admin login at a time
	saleID  uuid.UUID
	stock   int
	limit   int
	shards  int // of the sale (0: the system's default)

	users     []*shopper
	mu        sync.Mutex
	purchases []*purchase
	began     time.Time
	end       atomic.Int64 // unix nanoseconds: when a rate load stops
	// roomStarted is closed once a room load set its sale's start (began).
	roomStarted chan struct{}
}

type shopper struct {
	id       uuid.UUID
	email    string
	ip       string
	mu       sync.Mutex
	token    string
	relogins int
}

// purchase is one purchase intent: one user, one idempotency key, every attempt at it.
type purchase struct {
	user     int
	key      string
	qty      int
	mu       sync.Mutex
	attempts []attempt
}

type attempt struct {
	node    int
	at      time.Duration // since the load began
	status  int           // 0: no answer
	problem string        // last part of a problem's type
	orderID uuid.UUID     // of a 2xx answer
	err     error
}

func newDriver(apis []string, conns int) *driver {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	d := &driver{apis: apis, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, roomStarted: make(chan struct{})}
	d.end.Store(math.MaxInt64) // until stopAt
	return d
}

func (d *driver) close() { d.http.CloseIdleConnections() }

type answer struct {
	status int
	body   []byte
}

func (d *driver) call(ctx context.Context, node int, method, path, token, ip, key string, body any) (answer, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.apis[node]+path, r)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: raw}, err
}

func (d *driver) callJSON(ctx context.Context, node int, method, path, token, ip string, body, out any) error {
	a, err := d.call(ctx, node, method, path, token, ip, "", body)
	if err != nil {
		return err
	}
	if a.status/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, a.status, strings.TrimSpace(string(a.body)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(a.body, out)
}

// prepare logs the admin in, creates the sale (open since a second ago, for an hour) and
// creates and logs in n users, each with its own address.
func (d *driver) prepare(ctx context.Context, users, stock, limit int) error {
	d.stock, d.limit = stock, limit
	// /readyz can answer before the start hook that creates the first admin has run.
	for deadline := time.Now().Add(15 * time.Second); ; {
		err := d.adminLogin(ctx, 0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	now := time.Now().UTC()
	var sale struct {
		ID uuid.UUID `json:"id"`
	}
	body := map[string]any{
		"name": "Chaos " + now.Format(time.RFC3339), "priceCents": 1000, "currency": "EUR",
		"totalStock": stock, "perUserLimit": limit,
		"startsAt": now.Add(-time.Second).Format(time.RFC3339Nano), "endsAt": now.Add(time.Hour).Format(time.RFC3339Nano),
	}
	if d.shards > 0 {
		body["shards"] = d.shards
	}
	if err := d.callJSON(ctx, 0, http.MethodPost, "/v1/admin/sales", d.admin, "192.0.2.1", body, &sale); err != nil {
		return fmt.Errorf("create sale: %w", err)
	}
	d.saleID = sale.ID
	d.users = make([]*shopper, users)
	var next atomic.Int64
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= users {
					return
				}
				u := &shopper{email: fmt.Sprintf("shopper-%d@chaos.test", i), ip: fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)}
				var reg struct {
					ID uuid.UUID `json:"id"`
				}
				if err := d.callJSON(ctx, 0, http.MethodPost, "/v1/auth/register", "", u.ip, u.creds(), &reg); err != nil {
					errs <- fmt.Errorf("register user %d: %w", i, err)
					return
				}
				u.id = reg.ID
				if err := d.login(ctx, 0, u); err != nil {
					errs <- err
					return
				}
				d.users[i] = u
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil if none
}

func (d *driver) adminLogin(ctx context.Context, node int) error {
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	creds := map[string]string{"email": adminEmail, "password": adminPassword}
	if err := d.callJSON(ctx, node, http.MethodPost, "/v1/auth/login", "", "192.0.2.1", creds, &tok); err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	d.mu.Lock()
	d.admin = tok.AccessToken
	d.mu.Unlock()
	return nil
}

// adminRelogin logs the admin in again unless another caller already replaced the stale token:
// the checks ask many orders at once, and the auth rate limit (per client IP) would refuse a
// login for each.
func (d *driver) adminRelogin(ctx context.Context, node int, stale string) error {
	d.adminMu.Lock()
	defer d.adminMu.Unlock()
	d.mu.Lock()
	current := d.admin
	d.mu.Unlock()
	if current != stale {
		return nil
	}
	return d.adminLogin(ctx, node)
}

// orderStatus asks the API, as the admin, what became of an order that has no row in
// PostgreSQL: "pending" or "failed" (its reservation in Redis says so), or "unknown" (404:
// neither PostgreSQL nor Redis knows it).
func (d *driver) orderStatus(ctx context.Context, node int, id uuid.UUID) (string, error) {
	for try := 0; ; try++ {
		d.mu.Lock()
		token := d.admin
		d.mu.Unlock()
		a, err := d.call(ctx, node, http.MethodGet, "/v1/orders/"+id.String(), token, "192.0.2.1", "", nil)
		if err != nil {
			return "", err
		}
		switch {
		case a.status == http.StatusUnauthorized && try == 0: // the admin's session went with Redis
			if err := d.adminRelogin(ctx, node, token); err != nil {
				return "", err
			}
			continue
		case a.status == http.StatusNotFound:
			return statusUnknown, nil
		case a.status != http.StatusOK:
			return "", fmt.Errorf("GET /v1/orders/%s: %d %s", id, a.status, strings.TrimSpace(string(a.body)))
		}
		var o struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(a.body, &o); err != nil {
			return "", err
		}
		return o.Status, nil
	}
}

func (u *shopper) creds() map[string]string {
	return map[string]string{"email": u.email, "password": "chaos-shopper-Passw0rd!"}
}

func (d *driver) login(ctx context.Context, node int, u *shopper) error {
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	if err := d.callJSON(ctx, node, http.MethodPost, "/v1/auth/login", "", u.ip, u.creds(), &tok); err != nil {
		return fmt.Errorf("login %s: %w", u.email, err)
	}
	u.mu.Lock()
	u.token = tok.AccessToken
	u.mu.Unlock()
	return nil
}

// newPurchase records a purchase intent of one unit with a fresh idempotency key.
func (d *driver) newPurchase(user int) *purchase {
	p := &purchase{user: user, key: uuid.NewString(), qty: 1}
	d.mu.Lock()
	d.purchases = append(d.purchases, p)
	d.mu.Unlock()
	return p
}

// send makes one attempt at a purchase on an API node. A 401 (the session is gone: Redis lost
// it) is what a client answers by logging in again and sending the same purchase, same key,
// once: the request never reached the shop.
func (d *driver) send(ctx context.Context, node int, p *purchase) attempt {
	a := d.attempt(ctx, node, p)
	if a.status == http.StatusUnauthorized {
		u := d.users[p.user]
		if err := d.login(ctx, node, u); err == nil {
			u.mu.Lock()
			u.relogins++
			u.mu.Unlock()
			a = d.attempt(ctx, node, p)
		}
	}
	return a
}

func (d *driver) attempt(ctx context.Context, node int, p *purchase) attempt {
	u := d.users[p.user]
	u.mu.Lock()
	token := u.token
	u.mu.Unlock()
	a := attempt{node: node, at: time.Since(d.began)}
	ans, err := d.call(ctx, node, http.MethodPost, "/v1/sales/"+d.saleID.String()+"/orders", token, u.ip, p.key,
		map[string]int{"quantity": p.qty})
	if err != nil {
		a.err = err
	} else {
		a.status = ans.status
		var body struct {
			ID   uuid.UUID `json:"id"`
			Type string    `json:"type"`
		}
		_ = json.Unmarshal(ans.body, &body)
		if ans.status/100 == 2 {
			a.orderID = body.ID
		} else {
			a.problem = body.Type[strings.LastIndex(body.Type, "/")+1:]
		}
	}
	p.mu.Lock()
	p.attempts = append(p.attempts, a)
	p.mu.Unlock()
	return a
}

// burst releases one purchase per user at once; user i goes to API node i mod nodes.
func (d *driver) burst(ctx context.Context) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range d.users {
		p := d.newPurchase(i)
		wg.Go(func() {
			<-release
			d.send(ctx, i%len(d.apis), p)
		})
	}
	d.began = time.Now()
	close(release)
	wg.Wait()
}

// rate sends purchases at a constant rate, open loop (each when due, answered or not), until
// the end set with stopAt; users take turns.
func (d *driver) rate(ctx context.Context, perSecond int) {
	interval := time.Second / time.Duration(perSecond)
	var wg sync.WaitGroup
	d.began = time.Now()
	for i := 0; ; i++ {
		due := d.began.Add(time.Duration(i) * interval)
		if due.UnixNano() >= d.end.Load() {
			break
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(due)):
		}
		p := d.newPurchase(i % len(d.users))
		wg.Go(func() { d.send(ctx, i%len(d.apis), p) })
	}
	wg.Wait()
}

// stopAt ends a rate load at t. Until it is called the load goes on: it runs until its fault
// has cleared, however long that took, and Trail after.
func (d *driver) stopAt(t time.Time) { d.end.Store(t.UnixNano()) }

// resend sends every purchase that matches again, same key, on node (-1: the node of its last
// attempt), at most 64 at a time. An answer "key in flight" (the first request's node died
// holding the key) is retried every 2 s for up to inflightWait.
func (d *driver) resend(ctx context.Context, node int, inflightWait time.Duration, match func(p *purchase) bool) int {
	all := d.snapshot()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	sent := 0
	for _, p := range all {
		if !match(p) {
			continue
		}
		sent++
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			n := node
			if n < 0 {
				n = p.last().node
			}
			deadline := time.Now().Add(inflightWait)
			for {
				a := d.send(ctx, n, p)
				if a.problem != problemInFlight || time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				time.Sleep(2 * time.Second)
			}
		})
	}
	wg.Wait()
	return sent
}

// snapshot is the purchases so far.
func (d *driver) snapshot() []*purchase {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*purchase(nil), d.purchases...)
}

// last is the purchase's last attempt (a zero attempt before the first).
func (p *purchase) last() attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.attempts) == 0 {
		return attempt{}
	}
	return p.attempts[len(p.attempts)-1]
}

// failed is true when the purchase's last attempt got no answer or a server error.
func (p *purchase) failed() bool {
	a := p.last()
	return a.err != nil || a.status >= 500
}

func (d *driver) relogins() int {
	n := 0
	for _, u := range d.users {
		u.mu.Lock()
		n += u.relogins
		u.mu.Unlock()
	}
	return n
}
