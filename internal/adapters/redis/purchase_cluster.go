package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/lua"
)

var (
	lookupScript      = goredis.NewScript(lua.Lookup)
	roomUnspendScript = goredis.NewScript(lua.RoomUnspend)
)

// purchaseOnCluster takes a purchase on a Redis Cluster in two round trips. The claim, the
// session and the rate-limit counter each live in a slot of their own, so they cannot be in
// the sale's script: the first round trip sends them at once to their nodes (the claim SET NX
// GET, the session's EXISTS, gcra.lua), the second runs reserve.lua on the sale's slot, which
// records a final refusal in the sale's keys hash (the claim holds the fingerprint and the sale
// only, and is never rewritten: a key's answer is its order or its refusal in the sale). The
// script runs only once the claim and the checks let it: a refused check or another request's
// key takes nothing. A check's refusal, and an answer that leaves the key free (not started, a
// fence, an unknown sale), give back the claim this request made: one more round trip.
func (p *Purchases) purchaseOnCluster(ctx context.Context, pu ports.Purchase) (ports.PurchaseOutcome, error) {
	r := pu.Reservation
	if pu.TTL <= 0 {
		return ports.PurchaseOutcome{}, errors.New("purchase: no TTL for the answer")
	}
	k, home, shards, err := p.inv.home(ctx, r)
	if err != nil {
		return ports.PurchaseOutcome{}, fmt.Errorf("purchase: %w", err)
	}
	known, alive, rate, err := p.claimAndCheck(ctx, pu)
	if err != nil {
		return ports.PurchaseOutcome{}, err
	}
	out := ports.PurchaseOutcome{Recorded: true, Rate: rate}
	free := func() error { // give back this request's claim
		if known != nil {
			return nil
		}
		if err := p.Forget(ctx, pu.Scope); err != nil {
			return fmt.Errorf("purchase: free the key: %w", err)
		}
		return nil
	}
	switch {
	case !alive:
		if err := free(); err != nil {
			return ports.PurchaseOutcome{}, err
		}
		return out, domain.ErrUnauthenticated.WithDetail("the session has ended; log in again")
	case rate != nil && !rate.Allowed:
		if err := free(); err != nil {
			return ports.PurchaseOutcome{}, err
		}
		return out, domain.ErrRateLimited.WithDetail(fmt.Sprintf("%d requests per minute; retry in %d seconds",
			pu.Gate.PerMinute, max(int(math.Ceil(rate.RetryAfter.Seconds())), 1)))
	case known != nil && (known.Done || known.Fingerprint != pu.Fingerprint):
		out.Known = known // another request's key, or an answer the caller completed
		return out, nil
	}
	spent := false                 // the admission, spent here before the reservation
	if pu.Admission && home != 0 { // the room's keys are in the head shard's slot: spend it first
		if err := p.spendAdmission(ctx, pu); err != nil {
			if ferr := free(); ferr != nil {
				return ports.PurchaseOutcome{}, ferr
			}
			if domain.CodeOf(err) != "" {
				return out, err
			}
			return ports.PurchaseOutcome{}, err
		}
		pu.Admission, spent = false, true
	}
	reply, waited, err := p.reserveCall(ctx, k, pu, ports.PurchaseGate{}, true)
	if err != nil {
		return ports.PurchaseOutcome{}, fmt.Errorf("reserve: %w", err)
	}
	if reply[0] == "SHORT" { // a shard of a sharded sale: refill it, then again
		if reply, err = p.inv.short(ctx, r, home, shards, true, reply, func() ([]string, error) {
			reply, n, err := p.reserveCall(ctx, k, pu, ports.PurchaseGate{}, true)
			waited = n
			return reply, err
		}); err != nil {
			return ports.PurchaseOutcome{}, fmt.Errorf("reserve: %w", err)
		}
		if final(reply) { // perhaps the adapter's, not the script's: record it (HSETNX)
			raw, _ := json.Marshal(refusalRecord{Reply: reply, Quantity: r.Quantity})
			if err := p.inv.rdb.HSetNX(ctx, k.keys, r.UserID.String()+":"+r.IdempotencyKey, "R:"+string(raw)).Err(); err != nil {
				return ports.PurchaseOutcome{}, fmt.Errorf("record the refusal: %w", err)
			}
		}
	}
	if spent && reply[0] != "OK" && reply[0] != "DUP" { // nothing taken: the buyer keeps the admission
		if err := p.unspendAdmission(ctx, pu); err != nil {
			return ports.PurchaseOutcome{}, err
		}
	}
	if rec, ok := p.inv.answerIn(r, reply); ok && ((reply[0] == "DUP" && known != nil) || reply[0] == "REFUSED") {
		rec.Fingerprint = pu.Fingerprint // a replay: the key's answer, found in the sale
		out.Known = &rec
		return out, nil
	}
	res, gen, rerr := p.inv.reserveOutcome(r, reply)
	if rerr != nil && !final(reply) {
		if err := free(); err != nil { // not started, fenced, rolled back, unknown: the key stays free
			return ports.PurchaseOutcome{}, err
		}
	}
	return p.reserved(ctx, pu, k, shards, waited, res, gen, rerr, out)
}

// spendAdmission spends the buyer's waiting-room admission ahead of the reservation
// (room_use.lua: the admission holds its share of the stock a while, until the admission pass
// could see the reservation), for a Cluster's sharded sale whose home shard is not in the
// room's slot; a purchase then refused by its shard gives it back (unspendAdmission).
func (p *Purchases) spendAdmission(ctx context.Context, pu ports.Purchase) error {
	r := pu.Reservation
	k := roomKeysOf(p.inv.prefix, r.TenantID, r.SaleID)
	use, err := roomUseScript.Run(ctx, p.inv.rdb, []string{k.adm, k.live, k.held, k.keys}, r.UserID.String(), r.IdempotencyKey).Text()
	if err != nil {
		return fmt.Errorf("spend admission: %w", err)
	}
	return domain.AdmissionRefusal(domain.AdmissionUse(use))
}

// unspendAdmission gives back the admission spendAdmission spent, when the reservation then
// took nothing (a crash in between leaves it spent: the buyer joins again).
func (p *Purchases) unspendAdmission(ctx context.Context, pu ports.Purchase) error {
	r := pu.Reservation
	k := roomKeysOf(p.inv.prefix, r.TenantID, r.SaleID)
	if err := roomUnspendScript.Run(ctx, p.inv.rdb, []string{k.adm, k.live, k.held}, r.UserID.String(), r.IdempotencyKey).Err(); err != nil {
		return fmt.Errorf("give back the admission: %w", err)
	}
	return nil
}

// claimAndCheck claims the purchase's key and makes the gate's checks, in one round trip to
// their nodes: the key's record if it was in use (nil: claimed now), whether the session is
// alive (true if none was asked), and the rate limit's decision (nil if none was asked).
func (p *Purchases) claimAndCheck(ctx context.Context, pu ports.Purchase) (*ports.IdempotencyRecord, bool, *ports.RateDecision, error) {
	r := pu.Reservation
	record, _ := json.Marshal(idempotencyRecord{Fingerprint: pu.Fingerprint, Sale: r.SaleID.String()})
	g := pu.Gate
	rateKeys := []string{rateKey(p.inv.prefix, g.RateKey)}
	rateArgs := []any{g.PerMinute, g.PerMinute, 60}
	var claimCmd *goredis.StatusCmd
	var aliveCmd *goredis.IntCmd
	var rateCmd *goredis.Cmd
	_, err := p.inv.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		claimCmd = pipe.SetArgs(ctx, p.key(pu.Scope), record, goredis.SetArgs{Mode: "NX", Get: true, TTL: pu.TTL})
		if g.SessionID != uuid.Nil {
			aliveCmd = pipe.Exists(ctx, sessionKey(p.inv.prefix, g.SessionID))
		}
		if g.PerMinute > 0 {
			rateCmd = gcraScript.EvalSha(ctx, pipe, rateKeys, rateArgs...)
		}
		return nil
	})
	if rateCmd != nil && isNoScript(rateCmd.Err()) { // first use since Redis started: send the script itself
		rateCmd = gcraScript.Eval(ctx, p.inv.rdb, rateKeys, rateArgs...)
		if err == nil || isNoScript(err) {
			err = rateCmd.Err()
		}
	}
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, false, nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	known, err := decodeClaim(claimCmd, r.TenantID)
	if err != nil {
		return nil, false, nil, err
	}
	if aliveCmd != nil && aliveCmd.Err() != nil {
		return nil, false, nil, fmt.Errorf("check the session: %w", aliveCmd.Err())
	}
	var rate *ports.RateDecision
	if rateCmd != nil {
		v, err := rateCmd.Slice()
		if err != nil || len(v) != 4 {
			return nil, false, nil, fmt.Errorf("rate limit reply %v: %w", v, err)
		}
		allowed, _ := v[0].(int64)
		left, _ := v[1].(int64)
		rate = &ports.RateDecision{Allowed: allowed == 1, Remaining: int(left), RetryAfter: seconds(v[2]), ResetAfter: seconds(v[3])}
	}
	return known, aliveCmd == nil || aliveCmd.Val() == 1, rate, nil
}

// refusalRecord is a final refusal as reserve.lua records it in a sale's keys hash on a
// Cluster ("R:" and this JSON).
type refusalRecord struct {
	Reply    []string `json:"x"`
	Quantity int      `json:"q"`
}

// final reports whether a reply of reserve.lua is a refusal a retry would meet again.
func final(reply []string) bool {
	switch reply[0] {
	case "SOLD_OUT", "LIMIT", "INSUFFICIENT", "ENDED":
		return true
	}
	return false
}

// answerIn reads the answer a reply of reserve.lua holds for the key of r: its order (DUP, or
// OK: taken now), or a refusal recorded before (REFUSED) or now; false for any other reply.
func (s *Inventory) answerIn(r domain.Reservation, reply []string) (ports.IdempotencyRecord, bool) {
	rec := ports.IdempotencyRecord{Done: true}
	switch {
	case reply[0] == "OK" || reply[0] == "DUP":
		res, err := decodeReservation(r.TenantID, r.SaleID, reply[1])
		if err != nil {
			return rec, false
		}
		res.Status = domain.OrderPending // the answer given: accepted, pending
		order := res.Order()
		rec.Outcome.Order = &order
	case reply[0] == "REFUSED":
		var rr refusalRecord
		if err := json.Unmarshal([]byte(reply[1]), &rr); err != nil || len(rr.Reply) == 0 {
			return rec, false
		}
		return refusalAnswer(rr.Reply, rr.Quantity)
	case final(reply):
		return refusalAnswer(reply, r.Quantity)
	default:
		return rec, false
	}
	return rec, true
}

func refusalAnswer(reply []string, qty int) (ports.IdempotencyRecord, bool) {
	var de *domain.Error
	if !errors.As(answerOf(reply, qty), &de) {
		return ports.IdempotencyRecord{}, false
	}
	return ports.IdempotencyRecord{Done: true, Outcome: ports.PlaceOrderOutcome{ErrCode: de.Code, ErrDetail: de.Detail}}, true
}
