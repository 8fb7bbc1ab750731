package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/ports"
)

// Nodes implements ports.Nodes: a set of the API nodes that joined, and a lease key per node
// that it renews while it lives. A node in the set without a lease died without leaving.
type Nodes struct {
	rdb    goredis.UniversalClient
	prefix string
}

// NewNodes keeps the registry under prefix (REDIS_PREFIX).
func NewNodes(rdb goredis.UniversalClient, prefix string) *Nodes {
	return &Nodes{rdb: rdb, prefix: prefix}
}

var _ ports.Nodes = (*Nodes)(nil)

// The registry's keys share the {nodes} hash tag: Renew writes the set and a lease in one
// transaction, which a cluster allows within one slot only.
func (n *Nodes) set() string              { return n.prefix + ":{nodes}" }
func (n *Nodes) lease(node string) string { return n.prefix + ":{nodes}:" + node }

// Renew joins node (again) and extends its lease to ttl from now.
func (n *Nodes) Renew(ctx context.Context, node string, ttl time.Duration) error {
	_, err := n.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SAdd(ctx, n.set(), node)
		p.Set(ctx, n.lease(node), 1, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("renew node lease: %w", err)
	}
	return nil
}

// Leave removes node: it stopped cleanly, holding nothing.
func (n *Nodes) Leave(ctx context.Context, node string) error {
	if err := n.rdb.Del(ctx, n.lease(node)).Err(); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return n.Forget(ctx, node)
}

// Dead implements ports.Nodes.
func (n *Nodes) Dead(ctx context.Context) ([]string, error) {
	members, err := n.rdb.SMembers(ctx, n.set()).Result()
	if err != nil || len(members) == 0 {
		return nil, err
	}
	alive := make([]*goredis.IntCmd, len(members))
	_, err = n.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, m := range members {
			alive[i] = p.Exists(ctx, n.lease(m))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node leases: %w", err)
	}
	var dead []string
	for i, m := range members {
		if alive[i].Val() == 0 {
			dead = append(dead, m)
		}
	}
	return dead, nil
}

// Forget implements ports.Nodes.
func (n *Nodes) Forget(ctx context.Context, node string) error {
	if err := n.rdb.SRem(ctx, n.set(), node).Err(); err != nil {
		return fmt.Errorf("forget node: %w", err)
	}
	return nil
}

// NodeLease keeps one node's lease alive while it runs: renewed every ttl/3, removed on Stop
// if the node holds nothing.
type NodeLease struct {
	nodes *Nodes
	node  string
	ttl   time.Duration
	log   *slog.Logger
	// holds reports whether the node still holds accepted orders it could not queue.
	holds func() bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewNodeLease is node's lease of ttl; holds (nil: never) tells Stop whether to leave.
func NewNodeLease(nodes *Nodes, node string, ttl time.Duration, holds func() bool, log *slog.Logger) *NodeLease {
	if holds == nil {
		holds = func() bool { return false }
	}
	return &NodeLease{nodes: nodes, node: node, ttl: ttl, holds: holds, log: log}
}

// Start takes the lease and renews it in the background until Stop.
func (l *NodeLease) Start(ctx context.Context) error {
	if err := l.nodes.Renew(ctx, l.node, l.ttl); err != nil {
		return err
	}
	run, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Go(func() {
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-run.Done():
				return
			case <-t.C:
				if err := l.nodes.Renew(run, l.node, l.ttl); err != nil && run.Err() == nil {
					l.log.Warn("node lease not renewed", "node", l.node, "err", err)
				}
			}
		}
	})
	return nil
}

// Stop stops renewing and leaves, unless the node still holds accepted orders it could not
// queue: then the lease runs out and the worker queues them, as for a node that died.
func (l *NodeLease) Stop(ctx context.Context) error {
	if l.cancel != nil {
		l.cancel()
		l.wg.Wait()
	}
	if l.holds() {
		l.log.Warn("stopping with accepted orders not queued: the worker queues them when this node's lease runs out",
			"node", l.node, "lease", l.ttl)
		return nil
	}
	return l.nodes.Leave(ctx, l.node)
}
