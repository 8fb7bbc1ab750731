package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The room load: the sale has a waiting room, every user joins it before the start, then polls
// its place (the heartbeat clients without a WebSocket use) until it is admitted, and buys one
// unit at once; a user whose node stops answering asks another. It runs until the room closes
// (sold out) or the users have nothing left to wait for.

// roomPoll spaces a waiting user's polls (jittered: half of it to one and a half).
const roomPoll = 500 * time.Millisecond

// enableRoom gives the driver's sale a waiting room that opens in a while (the users join
// first): admitPerSecond, admissions lasting ttl.
func (d *driver) enableRoom(ctx context.Context, admitPerSecond int, ttl time.Duration) error {
	later := time.Now().Add(time.Hour).UTC()
	return d.patchSale(ctx, map[string]any{
		"startsAt": later.Format(time.RFC3339Nano), "endsAt": later.Add(time.Hour).Format(time.RFC3339Nano),
		"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": admitPerSecond, "admissionTtl": int(ttl.Seconds())},
	})
}

func (d *driver) patchSale(ctx context.Context, body map[string]any) error {
	if err := d.callJSON(ctx, 0, http.MethodPatch, "/v1/admin/sales/"+d.saleID.String(), d.admin, "192.0.2.1", body, nil); err != nil {
		return fmt.Errorf("change the sale: %w", err)
	}
	return nil
}

// room runs the room load: every user joins on node i mod nodes, the sale starts, and each
// user waits for its admission and buys; until every user is done or ctx ends.
func (d *driver) room(ctx context.Context) error {
	started := false
	defer func() { // a load that failed before the start lets the injection go on
		if !started {
			close(d.roomStarted)
		}
	}()
	joined := make([]int, len(d.users)) // the node each user asks
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var joinErr error
	for i := range d.users {
		joined[i] = i % len(d.apis)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := d.queue(ctx, joined[i], i, http.MethodPost); err != nil {
				mu.Lock()
				joinErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if joinErr != nil {
		return fmt.Errorf("join the waiting room: %w", joinErr)
	}
	start := time.Now().Add(time.Second).UTC()
	if err := d.patchSale(ctx, map[string]any{"startsAt": start.Format(time.RFC3339Nano),
		"endsAt": start.Add(time.Hour).Format(time.RFC3339Nano)}); err != nil {
		return err
	}
	d.began, started = start, true
	close(d.roomStarted)
	for i := range d.users {
		wg.Go(func() { d.waitAndBuy(ctx, i, joined[i]) })
	}
	wg.Wait()
	return nil
}

// roomLoadFor bounds the room load from the start.
const roomLoadFor = 2 * time.Minute

// waitAndBuy polls user i's place until it is admitted (then buys once), or the room has
// nothing more for it (closed, its admission used or expired). A purchase that got no answer
// or a 5xx is sent again to the next node with its key; one answered "key in flight" (its
// node died holding the key) is left to the row's resend after the load.
func (d *driver) waitAndBuy(ctx context.Context, i, node int) {
	sleepUntil(ctx, d.began)
	end := d.began.Add(roomLoadFor)
	for ctx.Err() == nil && time.Now().Before(end) {
		state, err := d.queue(ctx, node, i, http.MethodGet)
		switch {
		case err != nil: // the node is down: ask the next
			node = (node + 1) % len(d.apis)
		case state == "not-in-queue": // the place was lost (a silence, a Redis loss): join again
			_, _ = d.queue(ctx, node, i, http.MethodPost)
		case state == "admitted":
			p := d.newPurchase(i)
			for a := d.send(ctx, node, p); a.err != nil || a.status >= 500; a = d.send(ctx, node, p) {
				node = (node + 1) % len(d.apis) // same key, other node: the first answer or its replay
				if !sleepFor(ctx, roomPoll) || time.Now().After(end) {
					return
				}
			}
			return
		case state == "closed", state == "used", state == "expired":
			return
		}
		sleepFor(ctx, roomPoll/2+rand.N(roomPoll)) //nolint:gosec // jitter of a test load, not a secret
	}
}

// queue joins (POST) or reads (GET) user i's place on node: its state, or the problem's type
// ("not-in-queue"); an error for no answer or a 5xx. A 401 logs the user in again.
func (d *driver) queue(ctx context.Context, node, i int, method string) (string, error) {
	u := d.users[i]
	for try := 0; ; try++ {
		u.mu.Lock()
		token := u.token
		u.mu.Unlock()
		a, err := d.call(ctx, node, method, "/v1/sales/"+d.saleID.String()+"/queue", token, u.ip, "", nil)
		if err != nil {
			return "", err
		}
		if a.status == http.StatusUnauthorized && try == 0 {
			if err := d.login(ctx, node, u); err != nil {
				return "", err
			}
			continue
		}
		if a.status >= 500 {
			return "", fmt.Errorf("%s queue: %d", method, a.status)
		}
		var body struct {
			State string `json:"state"`
			Type  string `json:"type"`
		}
		_ = json.Unmarshal(a.body, &body)
		if a.status/100 != 2 {
			return body.Type[strings.LastIndex(body.Type, "/")+1:], nil
		}
		return body.State, nil
	}
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// RoomFacts is what the sale's waiting room recorded (its adm hash), for a row with a room.
type RoomFacts struct {
	// Admissions is each admitted user's entry: "A:<until>" admitted, "U:<until>:<key>" spent
	// by the purchase with that idempotency key, "X:<until>" expired unused.
	Admissions map[string]string
	// Keys is each accepted order's buyer and idempotency key, by order.
	Keys map[string]string // order id -> "<user>:<key>"
	Now  time.Time
}

// roomFacts reads the room's admissions from Redis (the system's keys, REDIS_PREFIX "fs").
func (r *rowRun) roomFacts(ctx context.Context) (*RoomFacts, error) {
	keys, err := r.redis.Do(ctx, "KEYS", "fs:{*:"+r.d.saleID.String()+"}:room:adm")
	if err != nil {
		return nil, fmt.Errorf("find the room's admissions: %w", err)
	}
	rf := &RoomFacts{Admissions: map[string]string{}, Keys: map[string]string{}, Now: time.Now()}
	list, _ := keys.([]any)
	if len(list) != 1 {
		return nil, fmt.Errorf("the room's admissions: %d keys found, want 1", len(list))
	}
	all, err := r.redis.Do(ctx, "HGETALL", list[0])
	if err != nil {
		return nil, fmt.Errorf("read the room's admissions: %w", err)
	}
	switch v := all.(type) {
	case map[any]any: // RESP3
		for k, x := range v {
			rf.Admissions[fmt.Sprint(k)] = fmt.Sprint(x)
		}
	case []any:
		for i := 0; i+1 < len(v); i += 2 {
			rf.Admissions[fmt.Sprint(v[i])] = fmt.Sprint(v[i+1])
		}
	}
	for _, p := range r.d.snapshot() {
		for _, id := range p.orderIDs() {
			rf.Keys[id.String()] = r.d.users[p.user].id.String() + ":" + p.key
		}
	}
	return rf, nil
}

// evaluateRoom counts the room's invariants: accepted orders whose buyer's admission was not
// spent by that very purchase (bought without an admission, or on one spent by another key),
// and live admissions beyond what the remaining stock serves (limit units each).
func evaluateRoom(rf *RoomFacts, remaining, limit int) (unadmitted, overAdmitted int) {
	for _, buyerKey := range rf.Keys {
		user, key, _ := strings.Cut(buyerKey, ":")
		a := rf.Admissions[user]
		if !strings.HasPrefix(a, "U:") || !strings.HasSuffix(a, ":"+key) {
			unadmitted++
		}
	}
	live := 0
	for _, a := range rf.Admissions {
		var until int64
		if strings.HasPrefix(a, "A:") {
			if _, err := fmt.Sscanf(a, "A:%d", &until); err == nil && until > rf.Now.UnixMilli() {
				live++
			}
		}
	}
	servable := 0
	if remaining > 0 {
		servable = (remaining + limit - 1) / limit
	}
	return unadmitted, max(0, live-servable)
}

// roomDetails sums the room's admissions for the row's notes.
func roomDetails(rf *RoomFacts) string {
	n := map[byte]int{}
	for _, a := range rf.Admissions {
		if a != "" {
			n[a[0]]++
		}
	}
	return fmt.Sprintf("waiting room: %d admissions given (%d spent by a purchase, %d expired unused, %d still live)",
		len(rf.Admissions), n['U'], n['X'], n['A'])
}
