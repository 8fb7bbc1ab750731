package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/ports"
)

// Epoch implements ports.StoreEpoch: a key that says Redis holds what the system rebuilt in it.
// It is written only at the end of a pass that checked (and, where Redis had lost it, rebuilt)
// every live sale's inventory, and only if the key that pass started with is still there: a
// Redis that lost its data during the pass lost that key too, and is not stamped. A Redis that
// restarted empty, was flushed or failed over to a replica without it has no epoch until the
// next whole pass.
type Epoch struct {
	rdb          goredis.UniversalClient
	epoch, check string
}

// NewEpoch keeps the epoch under prefix (REDIS_PREFIX); both keys share the {epoch} hash tag,
// so that the stamp's script runs on one node of a cluster.
func NewEpoch(rdb goredis.UniversalClient, prefix string) *Epoch {
	return &Epoch{rdb: rdb, epoch: prefix + ":{epoch}", check: prefix + ":{epoch}:check"}
}

var _ ports.StoreEpoch = (*Epoch)(nil)

// checkTTL bounds how long a pass that died leaves its key behind.
const checkTTL = 10 * time.Minute

// BeginCheck implements ports.StoreEpoch.
func (e *Epoch) BeginCheck(ctx context.Context) (string, error) {
	token := uuid.NewString()
	if err := e.rdb.Set(ctx, e.check, token, checkTTL).Err(); err != nil {
		return "", fmt.Errorf("redis: begin the epoch check: %w", err)
	}
	return token, nil
}

// stampScript sets the epoch (keeping one already there) if KEYS[2] still holds the pass's token.
var stampScript = goredis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'NX')
redis.call('DEL', KEYS[2])
return 1`)

// Stamp implements ports.StoreEpoch.
func (e *Epoch) Stamp(ctx context.Context, token string) (bool, error) {
	n, err := stampScript.Run(ctx, e.rdb, []string{e.epoch, e.check}, token, uuid.NewString()).Int()
	if err != nil {
		return false, fmt.Errorf("redis: stamp the epoch: %w", err)
	}
	return n == 1, nil
}

// Held implements ports.StoreEpoch.
func (e *Epoch) Held(ctx context.Context) (bool, error) {
	err := e.rdb.Get(ctx, e.epoch).Err()
	switch {
	case errors.Is(err, goredis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redis: read the epoch: %w", err)
	}
	return true, nil
}
