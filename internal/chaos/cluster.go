package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// redisCluster is a private Redis Cluster: 3 masters and 3 replicas, each a Redis of its own
// directory (where it keeps nodes.conf, so a node started again rejoins).
type redisCluster struct {
	nodes []*Redis
}

func newRedisCluster(ctx context.Context, bin, dir, persist string) (*redisCluster, error) {
	c := &redisCluster{}
	create := []string{"--cluster", "create"}
	for i := range 6 {
		n, err := newRedis(ctx, bin, filepath.Join(dir, fmt.Sprint("node", i)), persist,
			"--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0")
		if err != nil {
			c.kill()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		create = append(create, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	out, err := exec.CommandContext(ctx, "redis-cli", append(create, "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.waitHealthy(ctx, nil); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// URL is the REDIS_URL of the cluster: its first three nodes as seeds.
func (c *redisCluster) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d?addr=127.0.0.1:%d&addr=127.0.0.1:%d", c.nodes[0].Port, c.nodes[1].Port, c.nodes[2].Port)
}

// waitHealthy waits until every node but those in down sees every slot served and each replica
// is in sync with its master.
func (c *redisCluster) waitHealthy(ctx context.Context, down *Redis) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		healthy := true
		for _, n := range c.nodes {
			if n == down {
				continue
			}
			cluster, err1 := n.Do(ctx, "CLUSTER", "INFO")
			repl, err2 := n.Do(ctx, "INFO", "replication")
			s, r := fmt.Sprint(cluster), fmt.Sprint(repl)
			if err1 != nil || err2 != nil || !strings.Contains(s, "cluster_state:ok") ||
				!strings.Contains(r, "role:master") && !strings.Contains(r, "master_link_status:up") {
				healthy = false
			}
		}
		if healthy {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("the Redis Cluster is not healthy after 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// masterOf is the node that is master of the slot holding keys matching pattern (found with
// SCAN on each master), or nil.
func (c *redisCluster) masterOf(ctx context.Context, pattern string) *Redis {
	for _, n := range c.nodes {
		repl, err := n.Do(ctx, "INFO", "replication")
		if err != nil || !strings.Contains(fmt.Sprint(repl), "role:master") {
			continue
		}
		client := n.Client()
		found := client.Scan(ctx, 0, pattern, 1000).Iterator().Next(ctx)
		_ = client.Close()
		if found {
			return n
		}
	}
	return nil
}

func (c *redisCluster) kill() {
	for _, n := range c.nodes {
		n.Kill()
	}
}
