package testutil

import (
	"context"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisURL is the server tests use (TEST_REDIS_URL).
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Redis is a test's share of the Redis server: a key prefix and an Asynq queue of its own.
type Redis struct {
	Client *goredis.Client
	Prefix string
	Queue  string
}

// NewRedis connects and picks a fresh prefix and queue; when t ends it deletes exactly the
// keys under them (never FLUSHALL: the server is shared).
func NewRedis(t testing.TB) Redis {
	t.Helper()
	opt, err := goredis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	client := goredis.NewClient(opt)
	if err := client.Ping(context.Background()).Err(); err != nil {
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

// DeleteKeys removes every key matching pattern, with SCAN (never KEYS or FLUSHALL).
func DeleteKeys(ctx context.Context, c goredis.UniversalClient, pattern string) {
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}

// Keys lists the keys matching pattern, sorted by SCAN order.
func Keys(ctx context.Context, c goredis.UniversalClient, pattern string) []string {
	var keys []string
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys
}
