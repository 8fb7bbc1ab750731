package redis

import (
	"context"
	"slices"

	goredis "github.com/redis/go-redis/v9"
)

// pipelined runs fn's commands as rdb.Pipelined does, one round trip, in order, except on a
// cluster. There the claim and the sale's keys live on different nodes, which go-redis reaches
// in parallel: a reservation could run before its own claim, and a duplicate that claims after
// the first request completed would then give back (settle) the stock that request answered
// with. So on a cluster the other commands (the claim) go first, then those on the sale's keys:
// two round trips. With REDIS_DURABILITY=replica these go, with the WAIT, over one connection to
// the master of the sale's slot: WAIT counts the replicas that acknowledged its own connection's
// writes, and go-redis would send it, keyless, to any node. The error is the first command's, in
// fn's order, as Pipelined's.
func (p *Purchases) pipelined(ctx context.Context, k saleKeys, fn func(goredis.Pipeliner) error) ([]goredis.Cmder, error) {
	cc, ok := p.inv.rdb.(*goredis.ClusterClient)
	if !ok {
		return p.inv.rdb.Pipelined(ctx, fn)
	}
	queued := cc.Pipeline()
	if err := fn(queued); err != nil {
		return nil, err
	}
	first, onSale := cc.Pipeline(), cc.Pipeline()
	if p.wait.Replicas > 0 {
		master, err := cc.MasterForKey(ctx, k.inv)
		if err != nil {
			return nil, err
		}
		onSale = master.Pipeline()
	}
	for _, cmd := range queued.Cmds() {
		if cmd.Name() == "wait" || slices.Contains(cmd.Args(), any(k.inv)) {
			_ = onSale.Process(ctx, cmd)
		} else {
			_ = first.Process(ctx, cmd)
		}
	}
	if first.Len() > 0 {
		_, _ = first.Exec(ctx)
	}
	if _, err := onSale.Exec(ctx); err != nil && !isNoScript(err) && p.wait.Replicas > 0 {
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
