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
// next whole pass. On a Cluster every master holds its own pair of keys (a hash tag in one of
// its slots): each can lose its data alone, and Redis holds the epoch only if every one does.
type Epoch struct {
	rdb    goredis.UniversalClient
	prefix string
}

// NewEpoch keeps the epoch under prefix (REDIS_PREFIX); a pair of keys shares a hash tag, so
// that the stamp's script runs on one node of a cluster.
func NewEpoch(rdb goredis.UniversalClient, prefix string) *Epoch {
	return &Epoch{rdb: rdb, prefix: prefix}
}

// epochKeys is one master's pair: the epoch and the key of the pass in progress.
type epochKeys struct{ epoch, check string }

// keys are the pairs to hold: one on a single node or Sentinel ({epoch}), one per master of a
// Cluster ({epoch-N}, N chosen so that the tag falls in one of that master's slots), looked up
// on each call (slots move with failovers and resharding).
func (e *Epoch) keys(ctx context.Context) ([]epochKeys, error) {
	pair := func(tag string) epochKeys {
		return epochKeys{epoch: e.prefix + ":{" + tag + "}", check: e.prefix + ":{" + tag + "}:check"}
	}
	cc, ok := e.rdb.(*goredis.ClusterClient)
	if !ok {
		return []epochKeys{pair("epoch")}, nil
	}
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: the cluster's shards: %w", err)
	}
	var out []epochKeys
	for _, sh := range shards {
		if len(sh.Slots) == 0 {
			continue // a shard serving no slot holds no data of ours
		}
		r := sh.Slots[0]
		for n := 0; n < 1<<20; n++ { // a few tries: a range is a third of the slots or so
			tag := fmt.Sprintf("epoch-%d", n)
			if slot := int64(keySlot(tag)); slot >= r.Start && slot <= r.End {
				out = append(out, pair(tag))
				break
			}
		}
	}
	return out, nil
}

// keySlot is Redis Cluster's slot of a key (here a bare hash tag): CRC16 (XMODEM) mod 16384.
func keySlot(key string) uint16 {
	var crc uint16
	for i := range len(key) {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

var _ ports.StoreEpoch = (*Epoch)(nil)

// checkTTL bounds how long a pass that died leaves its key behind.
const checkTTL = 10 * time.Minute

// BeginCheck implements ports.StoreEpoch.
func (e *Epoch) BeginCheck(ctx context.Context) (string, error) {
	keys, err := e.keys(ctx)
	if err != nil {
		return "", err
	}
	token := uuid.NewString()
	for _, k := range keys {
		if err := e.rdb.Set(ctx, k.check, token, checkTTL).Err(); err != nil {
			return "", fmt.Errorf("redis: begin the epoch check: %w", err)
		}
	}
	return token, nil
}

// stampScript sets the epoch (keeping one already there) if KEYS[2] still holds the pass's token.
var stampScript = goredis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'NX')
redis.call('DEL', KEYS[2])
return 1`)

// Stamp implements ports.StoreEpoch: every master whose pass key survived is stamped; the
// pass counts only if every one was.
func (e *Epoch) Stamp(ctx context.Context, token string) (bool, error) {
	keys, err := e.keys(ctx)
	if err != nil {
		return false, err
	}
	all := true
	for _, k := range keys {
		n, err := stampScript.Run(ctx, e.rdb, []string{k.epoch, k.check}, token, uuid.NewString()).Int()
		if err != nil {
			return false, fmt.Errorf("redis: stamp the epoch: %w", err)
		}
		all = all && n == 1
	}
	return all, nil
}

// Held implements ports.StoreEpoch: every master holds its epoch.
func (e *Epoch) Held(ctx context.Context) (bool, error) {
	keys, err := e.keys(ctx)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		err := e.rdb.Get(ctx, k.epoch).Err()
		switch {
		case errors.Is(err, goredis.Nil):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("redis: read the epoch: %w", err)
		}
	}
	return true, nil
}
