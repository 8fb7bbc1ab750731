package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Lookup implements ports.PurchaseStore: one GET of the key's record (decoded as a claim's
// answer is), with the session's EXISTS in the same round trip if one is asked.
func (p *Purchases) Lookup(ctx context.Context, sc ports.IdempotencyScope, session uuid.UUID) (ports.IdempotencyRecord, bool, error) {
	if session != uuid.Nil && !p.GateInPurchase() {
		return ports.IdempotencyRecord{}, false, errors.New("look up idempotency key: the session is not checked on a Redis Cluster")
	}
	var alive *goredis.IntCmd
	var cmd *goredis.StringCmd
	_, err := p.inv.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		if session != uuid.Nil {
			alive = pipe.Exists(ctx, sessionKey(p.inv.prefix, session))
		}
		cmd = pipe.Get(ctx, p.key(sc))
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return ports.IdempotencyRecord{}, false, unavailable(fmt.Errorf("look up idempotency key: %w", err))
	}
	if alive != nil && alive.Val() == 0 {
		return ports.IdempotencyRecord{}, false, domain.ErrUnauthenticated.WithDetail("the session has ended; log in again")
	}
	if errors.Is(cmd.Err(), goredis.Nil) {
		return ports.IdempotencyRecord{}, false, nil
	}
	rec, err := decodeRecord(cmd.Val(), sc.TenantID)
	if err != nil {
		return ports.IdempotencyRecord{}, false, err
	}
	return rec, true, nil
}
