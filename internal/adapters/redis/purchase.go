package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/spans"
	"github.com/flashsale/flashsale/lua"
)

// Purchases implements ports.PurchaseStore on the inventory's client.
//
// On a single Redis (or a Sentinel group's master) a purchase is one call of reserve.lua, one
// round trip: the session and rate-limit checks of the edge (Purchase.Gate), the idempotency
// claim (one key per tenant, user and client key, across sales: a key reused for another sale
// is refused), the reservation, and the answer recorded in the claim for replays. Nothing is
// left to undo, and a refusal records nothing but a final answer.
//
// On a Redis Cluster the claim and the sale's keys live in different hash slots, so one script
// cannot do both: the claim goes first, then the reservation runs whatever the claim found,
// and when the claim finds the key in use the adapter settles what the script took before
// answering (see settle); the caller completes the key, and the edge checks first.
type Purchases struct {
	inv  *Inventory
	wait Wait
}

// Wait is what a reservation must reach before it is accepted (REDIS_DURABILITY=replica):
// Replicas acknowledging it within Timeout (Redis WAIT, in the purchase's round trip). The zero
// value waits for nothing.
type Wait struct {
	Replicas int
	Timeout  time.Duration
}

// NewPurchases takes purchases on inv's client, under its key prefix, waiting as w says; inv's
// transfers of stock between a sharded sale's shards wait as w says too.
func NewPurchases(inv *Inventory, w Wait) *Purchases {
	inv.wait = w
	return &Purchases{inv: inv, wait: w}
}

var _ ports.PurchaseStore = (*Purchases)(nil)

func (p *Purchases) key(sc ports.IdempotencyScope) string {
	return p.inv.prefix + ":idem:" + sc.TenantID.String() + ":" + sc.UserID.String() + ":" + sc.Key
}

// idempotencyRecord is a key's record as stored.
type idempotencyRecord struct {
	Fingerprint string        `json:"f"`
	Done        bool          `json:"d"`
	Order       *domain.Order `json:"o,omitempty"`
	ErrCode     domain.Code   `json:"e,omitempty"`
	ErrDetail   string        `json:"m,omitempty"`
	// Written by reserve.lua: the sale and the reservation answered, or the refusal's reply
	// and the quantity asked.
	Sale        string   `json:"s,omitempty"`
	Reservation string   `json:"r,omitempty"`
	Refusal     []string `json:"x,omitempty"`
	Quantity    int      `json:"q,omitempty"`
}

var discardScript = goredis.NewScript(lua.Discard)

// Purchase implements ports.PurchaseStore. A Redis that cannot answer now (its pool saturated,
// unreachable, failing over) fails it with domain.ErrUnavailable: a 503 with Retry-After.
func (p *Purchases) Purchase(ctx context.Context, pu ports.Purchase) (_ ports.PurchaseOutcome, err error) {
	ctx, span := tracer().Start(ctx, "redis.Reserve", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("flashsale.order_id", pu.Reservation.OrderID.String())))
	defer func() { spans.End(span, err) }()
	var out ports.PurchaseOutcome
	if _, cluster := p.inv.rdb.(*goredis.ClusterClient); cluster {
		out, err = p.purchaseOnCluster(ctx, pu)
	} else {
		out, err = p.purchaseInOneCall(ctx, pu)
	}
	return out, unavailable(err)
}

// notReplicated undoes a purchase whose reservation no replica acknowledged in time: a failover
// now could lose it, so it is not accepted. Stock taken by this request goes back and the key is
// freed; a reservation the key already held (a duplicate) stays, it was accepted before.
func (p *Purchases) notReplicated(ctx context.Context, pu ports.Purchase, res ports.ReserveResult) error {
	if !res.Duplicate {
		if err := p.discard(ctx, res.Reservation); err != nil {
			return fmt.Errorf("purchase: give back a reservation no replica acknowledged: %w", err)
		}
	}
	if err := p.Forget(ctx, pu.Scope); err != nil {
		return fmt.Errorf("purchase: free the key of a reservation no replica acknowledged: %w", err)
	}
	return domain.ErrUnavailable.WithDetail(fmt.Sprintf(
		"the reservation did not reach %d Redis replica(s) within %v; nothing was taken", p.wait.Replicas, p.wait.Timeout))
}

// discard undoes a pending reservation completely, as if it had never been made (discard.lua).
func (p *Purchases) discard(ctx context.Context, r domain.Reservation) error {
	k, _, _, err := p.inv.home(ctx, r)
	if err != nil {
		return fmt.Errorf("discard order %s: %w", r.OrderID, err)
	}
	if err := discardScript.Run(ctx, p.inv.rdb, k.reserveKeys(), r.OrderID.String()).Err(); err != nil {
		return fmt.Errorf("discard order %s: %w", r.OrderID, err)
	}
	return nil
}

// decodeClaim reads the answer of SET NX GET: nil if the key was free (and is now claimed).
func decodeClaim(cmd *goredis.StatusCmd, tenantID uuid.UUID) (*ports.IdempotencyRecord, error) {
	old, err := cmd.Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	rec, err := decodeRecord(old, tenantID)
	return &rec, err
}

// decodeRecord reads a key's record: a claim, or a final answer, as Complete stores it (an
// order, or an error's code and detail) or as reserve.lua does (the reservation, or the
// refusal's reply and the quantity asked, read as the purchase read them).
func decodeRecord(raw string, tenantID uuid.UUID) (ports.IdempotencyRecord, error) {
	var rec idempotencyRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return ports.IdempotencyRecord{}, fmt.Errorf("decode idempotency record: %w", err)
	}
	out := ports.IdempotencyRecord{Fingerprint: rec.Fingerprint, Done: rec.Done,
		Outcome: ports.PlaceOrderOutcome{Order: rec.Order, ErrCode: rec.ErrCode, ErrDetail: rec.ErrDetail}}
	switch {
	case rec.Reservation != "":
		saleID, err := uuid.Parse(rec.Sale)
		if err != nil {
			return ports.IdempotencyRecord{}, fmt.Errorf("decode idempotency record: sale %q: %w", rec.Sale, err)
		}
		r, err := decodeReservation(tenantID, saleID, rec.Reservation)
		if err != nil {
			return ports.IdempotencyRecord{}, err
		}
		r.Status = domain.OrderPending // the answer given: accepted, pending
		order := r.Order()
		out.Outcome.Order = &order
	case len(rec.Refusal) > 0:
		var de *domain.Error
		if !errors.As(answerOf(rec.Refusal, rec.Quantity), &de) {
			return ports.IdempotencyRecord{}, fmt.Errorf("decode idempotency record: refusal %q", rec.Refusal)
		}
		out.Outcome.ErrCode, out.Outcome.ErrDetail = de.Code, de.Detail
	}
	return out, nil
}

// answerOf is the refusal a final reply of reserve.lua stands for.
func answerOf(reply []string, qty int) error {
	if reply[0] == "ENDED" {
		return domain.ErrSaleEnded
	}
	return refusal(reply, qty)
}

// Complete implements ports.PurchaseStore.
func (p *Purchases) Complete(ctx context.Context, sc ports.IdempotencyScope, r ports.IdempotencyRecord, ttl time.Duration) error {
	raw, err := json.Marshal(idempotencyRecord{
		Fingerprint: r.Fingerprint, Done: true, Order: r.Outcome.Order, ErrCode: r.Outcome.ErrCode, ErrDetail: r.Outcome.ErrDetail,
	})
	if err != nil {
		return fmt.Errorf("encode idempotency record: %w", err)
	}
	if err := p.inv.rdb.Set(ctx, p.key(sc), raw, ttl).Err(); err != nil {
		return fmt.Errorf("store idempotency record: %w", err)
	}
	return nil
}

// Forget implements ports.PurchaseStore.
func (p *Purchases) Forget(ctx context.Context, sc ports.IdempotencyScope) error {
	if err := p.inv.rdb.Del(ctx, p.key(sc)).Err(); err != nil {
		return fmt.Errorf("forget idempotency key: %w", err)
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT")
}

// GateInPurchase implements ports.PurchaseStore: the edge's checks go in the purchase's own
// round trip.
func (p *Purchases) GateInPurchase() bool { return true }

// AdmissionInPurchase implements ports.PurchaseStore: reserve.lua spends a waiting room's
// admission with the stock it takes (on a Cluster, a sharded sale's purchase spends it just
// before: its home shard's slot is not the room's).
func (p *Purchases) AdmissionInPurchase() bool { return true }

// purchaseInOneCall takes a purchase in one call of reserve.lua (see Purchases).
func (p *Purchases) purchaseInOneCall(ctx context.Context, pu ports.Purchase) (ports.PurchaseOutcome, error) {
	r := pu.Reservation
	if pu.TTL <= 0 {
		return ports.PurchaseOutcome{}, errors.New("purchase: no TTL for the answer")
	}
	k, home, shards, err := p.inv.home(ctx, r)
	if err != nil {
		return ports.PurchaseOutcome{}, fmt.Errorf("purchase: %w", err)
	}
	reply, waited, err := p.reserveCall(ctx, k, pu, pu.Gate, false)
	if err != nil {
		return ports.PurchaseOutcome{}, fmt.Errorf("reserve: %w", err)
	}
	out := ports.PurchaseOutcome{Recorded: true}
	switch reply[0] {
	case "NO_SESSION":
		return out, domain.ErrUnauthenticated.WithDetail("the session has ended; log in again")
	case "RATE_LIMITED":
		d := ports.RateDecision{RetryAfter: seconds(reply[1]), ResetAfter: seconds(reply[2])}
		out.Rate = &d
		return out, domain.ErrRateLimited.WithDetail(fmt.Sprintf("%d requests per minute; retry in %d seconds",
			pu.Gate.PerMinute, max(int(math.Ceil(d.RetryAfter.Seconds())), 1)))
	}
	if pu.Gate.PerMinute > 0 && len(reply) > 2 {
		n := len(reply) - 2
		left, _ := strconv.Atoi(reply[n])
		out.Rate = &ports.RateDecision{Allowed: true, Remaining: left, ResetAfter: seconds(reply[n+1])}
		reply = reply[:n]
	}
	if reply[0] == "KNOWN" {
		rec, err := decodeRecord(reply[1], r.TenantID)
		if err != nil {
			return ports.PurchaseOutcome{}, err
		}
		out.Known = &rec
		return out, nil
	}
	if reply[0] == "SHORT" { // a shard of a sharded sale: refill it, then again (without the gate)
		if reply, err = p.inv.short(ctx, r, home, shards, true, reply, func() ([]string, error) {
			reply, n, err := p.reserveCall(ctx, k, pu, ports.PurchaseGate{}, false)
			waited = n
			return reply, err
		}); err != nil {
			return ports.PurchaseOutcome{}, fmt.Errorf("reserve: %w", err)
		}
		switch reply[0] {
		case "KNOWN": // another request with the key came in between
			rec, err := decodeRecord(reply[1], r.TenantID)
			if err != nil {
				return ports.PurchaseOutcome{}, err
			}
			out.Known = &rec
			return out, nil
		case "SOLD_OUT", "LIMIT", "INSUFFICIENT": // perhaps the adapter's, not the script's: record it
			raw, _ := json.Marshal(idempotencyRecord{Fingerprint: pu.Fingerprint, Done: true, Sale: r.SaleID.String(),
				Refusal: reply, Quantity: r.Quantity})
			if err := p.inv.rdb.SetNX(ctx, p.key(pu.Scope), raw, pu.TTL).Err(); err != nil {
				return ports.PurchaseOutcome{}, fmt.Errorf("record the refusal: %w", err)
			}
		}
	}
	res, gen, rerr := p.inv.reserveOutcome(r, reply)
	return p.reserved(ctx, pu, k, shards, waited, res, gen, rerr, out)
}

// reserved ends a purchase with the reservation script's outcome, on either path: the sale's
// remaining stock over every shard, the WAIT's verdict (a reservation no replica has is
// undone), this node's floor, or the loss the script found.
func (p *Purchases) reserved(ctx context.Context, pu ports.Purchase, k saleKeys, shards int, waited int64,
	res ports.ReserveResult, gen string, rerr error, out ports.PurchaseOutcome) (ports.PurchaseOutcome, error) {
	r := pu.Reservation
	if rerr == nil && shards > 1 {
		var err error
		if res.Remaining, err = p.inv.saleRemaining(ctx, r, res.Remaining); err != nil {
			return ports.PurchaseOutcome{}, fmt.Errorf("purchase: %w", err)
		}
	}
	if rerr == nil && p.wait.Replicas > 0 && waited < int64(p.wait.Replicas) {
		return ports.PurchaseOutcome{}, p.notReplicated(ctx, pu, res)
	}
	switch {
	case rerr == nil && !res.Duplicate:
		p.inv.accepted(res.Reservation, k, gen)
	case errors.Is(rerr, ports.ErrRolledBack):
		p.inv.lost(ctx, r)
	}
	out.Reserved = res
	return out, rerr
}

// reserveCall runs reserve.lua on shard k with the gate's checks (and the buyer's admission if
// pu.Admission; on a Cluster only for a shard in the room's slot), followed by a WAIT for the
// replicas if purchases wait for them (REDIS_DURABILITY=replica): its reply, and the replicas
// that acknowledged. On a single Redis the call takes the claim and the session too; on a
// Cluster (cluster) only the sale's rate-limit counter, in the sale's slot, and the WAIT goes
// on one connection to the master of that slot (a keyless WAIT would reach any master).
func (p *Purchases) reserveCall(ctx context.Context, k saleKeys, pu ports.Purchase, g ports.PurchaseGate, cluster bool) ([]string, int64, error) {
	r := pu.Reservation
	perMinute := max(g.PerMinute, 0)
	var keys []string
	checkSession := "0"
	if cluster {
		keys = append(k.reserveKeys(), k.rate(g.RateKey))
	} else {
		claim := p.key(pu.Scope)
		session, rate := claim, claim // a key stands in for a check not asked
		if g.SessionID != uuid.Nil {
			session, checkSession = sessionKey(p.inv.prefix, g.SessionID), "1"
		}
		if perMinute > 0 {
			rate = rateKey(p.inv.prefix, g.RateKey)
		}
		keys = append(k.reserveKeys(), claim, session, rate)
	}
	room := "0"
	if pu.Admission {
		rk := roomKeysOf(p.inv.prefix, r.TenantID, r.SaleID)
		keys, room = append(keys, rk.adm, rk.live, rk.held), "1"
	}
	args := append(p.inv.reserveArgs(k, r), pu.Fingerprint, r.SaleID.String(), pu.TTL.Milliseconds(), checkSession, perMinute, room)
	if p.wait.Replicas == 0 {
		reply, err := reserveScript.Run(ctx, p.inv.rdb, keys, args...).StringSlice()
		return reply, 0, err
	}
	pipelined := p.inv.rdb.Pipelined
	cc, onCluster := p.inv.rdb.(*goredis.ClusterClient)
	if onCluster {
		master, err := cc.MasterForKey(ctx, k.inv)
		if err != nil {
			return nil, 0, err
		}
		pipelined = master.Pipelined
	}
	var reserveCmd *goredis.Cmd
	var waitCmd *goredis.IntCmd
	run := func(eval func(goredis.Pipeliner) *goredis.Cmd) error {
		_, err := pipelined(ctx, func(pipe goredis.Pipeliner) error {
			reserveCmd = eval(pipe)
			waitCmd = goredis.NewIntCmd(ctx, "wait", p.wait.Replicas, p.wait.Timeout.Milliseconds())
			return pipe.Process(ctx, waitCmd)
		})
		return err
	}
	err := run(func(pipe goredis.Pipeliner) *goredis.Cmd { return reserveScript.EvalSha(ctx, pipe, keys, args...) })
	if isNoScript(reserveCmd.Err()) { // first use since Redis started: send the script itself
		err = run(func(pipe goredis.Pipeliner) *goredis.Cmd { return reserveScript.Eval(ctx, pipe, keys, args...) })
	}
	if err != nil {
		if onCluster {
			cc.ReloadState(ctx) // the slot may have moved (a failover): look up its master again
		}
		return nil, 0, err
	}
	reply, err := reserveCmd.StringSlice()
	return reply, waitCmd.Val(), err
}
