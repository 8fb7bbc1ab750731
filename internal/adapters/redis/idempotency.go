package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/ports"
)

// Lookup implements ports.PurchaseStore: one GET of the key's record (decoded as a claim's
// answer is).
func (p *Purchases) Lookup(ctx context.Context, sc ports.IdempotencyScope) (ports.IdempotencyRecord, bool, error) {
	cmd := goredis.NewStatusCmd(ctx, "get", p.key(sc))
	_ = p.inv.rdb.Process(ctx, cmd)
	if errors.Is(cmd.Err(), goredis.Nil) {
		return ports.IdempotencyRecord{}, false, nil
	}
	if cmd.Err() != nil {
		return ports.IdempotencyRecord{}, false, unavailable(fmt.Errorf("look up idempotency key: %w", cmd.Err()))
	}
	rec, err := decodeClaim(cmd)
	if err != nil || rec == nil {
		return ports.IdempotencyRecord{}, false, err
	}
	return *rec, true, nil
}
