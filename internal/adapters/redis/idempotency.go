package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Lookup implements ports.PurchaseStore, in one round trip (a pipeline): the key's record (GET,
// decoded as a claim's answer is), the session's EXISTS if one is asked, and the key's answer in
// the sale (lookup.lua on the buyer's shard, where the reservation records the key). A claim
// with an answer is that answer. A claim without one, or none at all, takes the sale's: the
// order of a purchase whose answer was lost (the caller freed its claim after the error), or on
// a Cluster, where a claim never holds the answer, the order or the final refusal.
func (p *Purchases) Lookup(ctx context.Context, sc ports.IdempotencyScope, saleID, session uuid.UUID) (ports.IdempotencyRecord, bool, error) {
	r := domain.Reservation{TenantID: sc.TenantID, SaleID: saleID, UserID: sc.UserID, IdempotencyKey: sc.Key}
	k, _, _, err := p.inv.home(ctx, r)
	if err != nil {
		return ports.IdempotencyRecord{}, false, unavailable(fmt.Errorf("look up idempotency key: %w", err))
	}
	lookupKeys, field := []string{k.keys, k.res}, sc.UserID.String()+":"+sc.Key
	var alive *goredis.IntCmd
	var cmd *goredis.StringCmd
	var inSale *goredis.Cmd
	run := func(eval func(goredis.Pipeliner) *goredis.Cmd) error {
		_, err := p.inv.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
			if session != uuid.Nil {
				alive = pipe.Exists(ctx, sessionKey(p.inv.prefix, session))
			}
			cmd = pipe.Get(ctx, p.key(sc))
			inSale = eval(pipe)
			return nil
		})
		return err
	}
	err = run(func(pipe goredis.Pipeliner) *goredis.Cmd { return lookupScript.EvalSha(ctx, pipe, lookupKeys, field) })
	if isNoScript(inSale.Err()) { // first use since Redis started: send the script itself
		err = run(func(pipe goredis.Pipeliner) *goredis.Cmd { return lookupScript.Eval(ctx, pipe, lookupKeys, field) })
	}
	if err != nil && !errors.Is(err, goredis.Nil) {
		return ports.IdempotencyRecord{}, false, unavailable(fmt.Errorf("look up idempotency key: %w", err))
	}
	if alive != nil && alive.Val() == 0 {
		return ports.IdempotencyRecord{}, false, domain.ErrUnauthenticated.WithDetail("the session has ended; log in again")
	}
	var rec ports.IdempotencyRecord
	claimed := !errors.Is(cmd.Err(), goredis.Nil)
	if claimed {
		if rec, err = decodeRecord(cmd.Val(), sc.TenantID); err != nil {
			return ports.IdempotencyRecord{}, false, err
		}
		if rec.Done {
			return rec, true, nil
		}
	}
	reply, _ := inSale.StringSlice()
	if len(reply) == 0 || (reply[0] == "DUP" && strings.TrimSpace(reply[1]) == "") {
		return rec, claimed, nil // free, or in flight
	}
	answer, ok := p.inv.answerIn(r, reply)
	if !ok {
		return rec, claimed, nil
	}
	answer.Fingerprint = rec.Fingerprint // "" without a claim: found in the sale only
	return answer, true, nil
}
