package testutil

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
)

// RedisURL is the server tests use (TEST_REDIS_URL): a single node, a Sentinel group or a
// Cluster, in the forms REDIS_URL takes (redisadapter.NewClient).
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Redis is a test's share of the Redis server: a key prefix and an Asynq queue of its own.
type Redis struct {
	Client goredis.UniversalClient
	Prefix string
	Queue  string
}

// NewRedis connects and picks a fresh prefix and queue; when t ends it deletes exactly the
// keys under them (never FLUSHALL: the server is shared).
func NewRedis(t testing.TB) Redis {
	t.Helper()
	client, err := redisadapter.Open(context.Background(), RedisURL())
	if err != nil {
		t.Fatalf("testutil: Redis at %s: %v", RedisURL(), err)
	}
	id := randomHex(6)
	r := Redis{Client: client, Prefix: "fstest-" + id, Queue: "orders-test-" + id}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Rate-limit counters carry the library's own "rate:" in front of the prefix.
		for _, pattern := range []string{r.Prefix + ":*", "rate:" + r.Prefix + ":*", "asynq:{" + r.Queue + "}:*", "asynq:{" + r.Queue + "-sales}:*"} {
			DeleteKeys(ctx, client, pattern)
		}
		client.SRem(ctx, "asynq:queues", r.Queue, r.Queue+"-sales")
		_ = client.Close()
	})
	return r
}

// DeleteKeys removes every key matching pattern, with SCAN on each master (never KEYS or
// FLUSHALL), one UNLINK per key (on a cluster the keys live in different slots).
func DeleteKeys(ctx context.Context, c goredis.UniversalClient, pattern string) {
	keys := Keys(ctx, c, pattern)
	for len(keys) > 0 {
		batch := keys[:min(500, len(keys))]
		keys = keys[len(batch):]
		_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range batch {
				p.Unlink(ctx, k)
			}
			return nil
		})
	}
}

// Keys lists the keys matching pattern, in SCAN order, from every master.
func Keys(ctx context.Context, c goredis.UniversalClient, pattern string) []string {
	var mu sync.Mutex
	var keys []string
	_ = redisadapter.ForEachMaster(ctx, c, func(ctx context.Context, m goredis.UniversalClient) error {
		iter := m.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	return keys
}
