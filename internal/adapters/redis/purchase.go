package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/spans"
	"github.com/flashsale/flashsale/lua"
)

// Purchases implements ports.PurchaseStore on the inventory's client: the idempotency claim (one
// key per tenant, user and client key, SET NX GET) and the reservation script go in one
// pipeline, one round trip.
//
// The claim and the sale's keys live in different hash slots (a key may be reused across sales,
// and must then be refused), so one script cannot do both: the reservation runs whatever the
// claim finds, and when the claim finds the key in use the adapter settles what the script
// took before answering (see settle).
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
}

var discardScript = goredis.NewScript(lua.Discard)

// Purchase implements ports.PurchaseStore. A Redis that cannot answer now (its pool saturated,
// unreachable, failing over) fails it with domain.ErrUnavailable: a 503 with Retry-After.
func (p *Purchases) Purchase(ctx context.Context, pu ports.Purchase) (_ ports.PurchaseOutcome, err error) {
	ctx, span := tracer().Start(ctx, "redis.Reserve", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("flashsale.order_id", pu.Reservation.OrderID.String())))
	defer func() { spans.End(span, err) }()
	out, err := p.purchase(ctx, pu)
	return out, unavailable(err)
}

func (p *Purchases) purchase(ctx context.Context, pu ports.Purchase) (ports.PurchaseOutcome, error) {
	r := pu.Reservation
	claim, _ := json.Marshal(idempotencyRecord{Fingerprint: pu.Fingerprint})
	k, home, shards, err := p.inv.home(ctx, r)
	if err != nil {
		return ports.PurchaseOutcome{}, fmt.Errorf("purchase: %w", err)
	}
	var claimCmd *goredis.StatusCmd
	var reserveCmd *goredis.Cmd
	var waitCmd *goredis.IntCmd
	_, err = p.pipelined(ctx, k, func(pipe goredis.Pipeliner) error {
		claimCmd = pipe.SetArgs(ctx, p.key(pu.Scope), claim, goredis.SetArgs{Mode: "NX", Get: true, TTL: pu.Lease})
		reserveCmd = reserveScript.EvalSha(ctx, pipe, k.reserveKeys(), p.inv.reserveArgs(k, r)...)
		if p.wait.Replicas > 0 {
			waitCmd = goredis.NewIntCmd(ctx, "wait", p.wait.Replicas, p.wait.Timeout.Milliseconds())
			_ = pipe.Process(ctx, waitCmd)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) && !isNoScript(reserveCmd.Err()) {
		return ports.PurchaseOutcome{}, fmt.Errorf("purchase: %w", err)
	}
	known, err := decodeClaim(claimCmd)
	if err != nil {
		return ports.PurchaseOutcome{}, err
	}
	var res ports.ReserveResult
	var gen string
	var rerr error
	switch {
	case isNoScript(reserveCmd.Err()) && known != nil:
		// First use since Redis started, and nothing to reserve: the answer is the key's.
	case isNoScript(reserveCmd.Err()): // load the script, then run it alone
		if err := reserveScript.Load(ctx, p.inv.rdb).Err(); err != nil {
			return ports.PurchaseOutcome{}, fmt.Errorf("load reserve script: %w", err)
		}
		_, err := p.pipelined(ctx, k, func(pipe goredis.Pipeliner) error {
			reserveCmd = reserveScript.EvalSha(ctx, pipe, k.reserveKeys(), p.inv.reserveArgs(k, r)...)
			if waitCmd != nil {
				_ = pipe.Process(ctx, waitCmd)
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return ports.PurchaseOutcome{}, fmt.Errorf("reserve: %w", err)
		}
		fallthrough
	default:
		reply, err := reserveCmd.StringSlice()
		if err != nil {
			return ports.PurchaseOutcome{}, fmt.Errorf("reserve script: %w", err)
		}
		if reply[0] == "SHORT" && known == nil { // a shard of a sharded sale: refill it, then again
			if reply, err = p.inv.short(ctx, r, home, shards, true, reply, func() ([]string, error) {
				return p.reserveAgain(ctx, k, r, waitCmd)
			}); err != nil {
				return ports.PurchaseOutcome{}, fmt.Errorf("reserve: %w", err)
			}
		}
		res, gen, rerr = p.inv.reserveOutcome(r, reply)
		if rerr == nil && shards > 1 {
			if res.Remaining, err = p.inv.saleRemaining(ctx, r, res.Remaining); err != nil {
				return ports.PurchaseOutcome{}, fmt.Errorf("purchase: %w", err)
			}
		}
	}
	if known != nil {
		if err := p.settle(ctx, *known, pu.Fingerprint, res, rerr); err != nil {
			return ports.PurchaseOutcome{}, err
		}
		return ports.PurchaseOutcome{Known: known}, nil
	}
	if errors.Is(rerr, domain.ErrSaleNotFound) {
		if err := p.Forget(ctx, pu.Scope); err != nil {
			return ports.PurchaseOutcome{}, fmt.Errorf("purchase: unclaim the key of an unknown sale: %w", err)
		}
	}
	if rerr == nil && waitCmd != nil && waitCmd.Val() < int64(p.wait.Replicas) {
		return ports.PurchaseOutcome{}, p.notReplicated(ctx, pu, res)
	}
	switch {
	case rerr == nil && !res.Duplicate:
		p.inv.accepted(res.Reservation, k, gen)
	case errors.Is(rerr, ports.ErrRolledBack):
		p.inv.lost(ctx, r)
	}
	return ports.PurchaseOutcome{Reserved: res}, rerr
}

// reserveAgain runs the reservation script alone on shard k, with the WAIT of waitCmd (nil:
// none), whose result it replaces.
func (p *Purchases) reserveAgain(ctx context.Context, k saleKeys, r domain.Reservation, waitCmd *goredis.IntCmd) ([]string, error) {
	var reserveCmd *goredis.Cmd
	_, err := p.pipelined(ctx, k, func(pipe goredis.Pipeliner) error {
		reserveCmd = reserveScript.Run(ctx, pipe, k.reserveKeys(), p.inv.reserveArgs(k, r)...)
		if waitCmd != nil {
			*waitCmd = *goredis.NewIntCmd(ctx, "wait", p.wait.Replicas, p.wait.Timeout.Milliseconds())
			_ = pipe.Process(ctx, waitCmd)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	return reserveCmd.StringSlice()
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

// settle deals with stock the script took beside a claim that found the key in use. The script
// dedups by key within a sale, so it took stock only if the key's first request was refused or
// was for another sale, or if that first request is still running and its own script has not
// run yet. In that last case the reservation is the order the first request will answer with
// (its script finds it as a duplicate, and queues it; the reconciler queues it if that request
// died): it is kept. Otherwise it is undone completely, as if never made.
func (p *Purchases) settle(ctx context.Context, known ports.IdempotencyRecord, fingerprint string,
	res ports.ReserveResult, rerr error) error {
	tookStock := rerr == nil && !res.Duplicate && res.Reservation.OrderID != [16]byte{}
	if !tookStock || (!known.Done && known.Fingerprint == fingerprint) {
		return nil
	}
	if err := p.discard(ctx, res.Reservation); err != nil {
		return fmt.Errorf("purchase: give back the stock taken beside a known key: %w", err)
	}
	return nil
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
func decodeClaim(cmd *goredis.StatusCmd) (*ports.IdempotencyRecord, error) {
	old, err := cmd.Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	var rec idempotencyRecord
	if err := json.Unmarshal([]byte(old), &rec); err != nil {
		return nil, fmt.Errorf("decode idempotency record: %w", err)
	}
	return &ports.IdempotencyRecord{
		Fingerprint: rec.Fingerprint, Done: rec.Done,
		Outcome: ports.PlaceOrderOutcome{Order: rec.Order, ErrCode: rec.ErrCode, ErrDetail: rec.ErrDetail},
	}, nil
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
