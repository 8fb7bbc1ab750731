package redis

import (
	"context"
	"slices"

	goredis "github.com/redis/go-redis/v9"
)

// pipelined runs fn's commands in one pipeline, as rdb.Pipelined does, except on a cluster
// waiting for replicas (REDIS_DURABILITY=replica): WAIT counts the replicas that acknowledged the
// writes of its own connection, and go-redis sends a keyless command to any node. There WAIT and
// the commands on the sale's keys go in a pipeline of their own over one connection to the
// master of the sale's slot, after the others (the claim, in another slot) have gone through the
// cluster client: two round trips. The error is the first command's, in fn's order, as
// Pipelined's.
func (p *Purchases) pipelined(ctx context.Context, k saleKeys, fn func(goredis.Pipeliner) error) ([]goredis.Cmder, error) {
	cc, ok := p.inv.rdb.(*goredis.ClusterClient)
	if !ok || p.wait.Replicas == 0 {
		return p.inv.rdb.Pipelined(ctx, fn)
	}
	master, err := cc.MasterForKey(ctx, k.inv)
	if err != nil {
		return nil, err
	}
	queued := cc.Pipeline()
	if err := fn(queued); err != nil {
		return nil, err
	}
	elsewhere, onSale := cc.Pipeline(), master.Pipeline()
	for _, cmd := range queued.Cmds() {
		if cmd.Name() == "wait" || slices.Contains(cmd.Args(), any(k.inv)) {
			_ = onSale.Process(ctx, cmd)
		} else {
			_ = elsewhere.Process(ctx, cmd)
		}
	}
	if elsewhere.Len() > 0 {
		_, _ = elsewhere.Exec(ctx)
	}
	if _, err := onSale.Exec(ctx); err != nil && !isNoScript(err) {
		cc.ReloadState(ctx) // the slot may have moved (a failover): look up its master again
	}
	cmds := queued.Cmds()
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}
