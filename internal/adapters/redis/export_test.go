package redis

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Give runs the first half of a transfer of units from shard from to shard to of a sale, as a
// purchase that died before the second half would leave it; it returns the units given.
func (s *Inventory) Give(ctx context.Context, tenantID, saleID uuid.UUID, from, to, units int) (int, string, error) {
	k := s.shardKeys(tenantID, saleID, from)
	n, _ := s.shardCount(ctx, tenantID, saleID)
	id := uuid.NewString()
	reply, _, err := s.run(ctx, k, giveScript, []string{k.inv, k.xout}, id, units, to, n)
	if err != nil || reply[0] != "OK" {
		return 0, id, err
	}
	return atoi(reply[1]), id, nil
}

// ShardInv is the inv key of shard k of a sale.
func (s *Inventory) ShardInv(tenantID, saleID uuid.UUID, k int) string {
	return s.shardKeys(tenantID, saleID, k).inv
}

// ShardKeys are every key of shard k of a sale.
func (s *Inventory) ShardKeys(tenantID, saleID uuid.UUID, k int) []string {
	sk := s.shardKeys(tenantID, saleID, k)
	return []string{sk.inv, sk.buyers, sk.keys, sk.res, sk.awaited, sk.xout, sk.xin}
}

// HomeShard is the shard of a sale in n shards that holds user's purchases.
func HomeShard(user uuid.UUID, n int) int { return homeShard(user, n) }

// SetTransferAge sets how old a transfer cut short must be before SettleTransfers finishes it,
// and returns the old value.
func SetTransferAge(d time.Duration) time.Duration {
	old := transferAge
	transferAge = d
	return old
}

// EpochKeys are the epoch keys Redis must hold (one per Cluster master).
func (e *Epoch) EpochKeys(ctx context.Context) ([]string, error) {
	keys, err := e.keys(ctx)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.epoch
	}
	return out, err
}

// KeySlot is Redis Cluster's slot of a key without a hash tag.
func KeySlot(key string) uint16 { return keySlot(key) }
