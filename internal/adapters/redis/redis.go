package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Open connects to REDIS_URL and checks it answers.
func Open(ctx context.Context, url string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: parse REDIS_URL: %w", err)
	}
	client := goredis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: ping: %w", err)
	}
	return client, nil
}

// CheckAOF fails unless Redis writes every change to its append-only file before answering
// (appendonly yes, appendfsync always): what REDIS_DURABILITY=aof promises.
func CheckAOF(ctx context.Context, rdb goredis.UniversalClient) error {
	got := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync"} {
		v, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return fmt.Errorf("redis: REDIS_DURABILITY=aof: read %s (CONFIG GET must be allowed): %w", name, err)
		}
		got[name] = v[name]
	}
	if got["appendonly"] != "yes" || got["appendfsync"] != "always" {
		return fmt.Errorf("redis: REDIS_DURABILITY=aof needs appendonly yes and appendfsync always; the server has appendonly %q, appendfsync %q",
			got["appendonly"], got["appendfsync"])
	}
	return nil
}

// Pinger makes a Redis client a readiness check.
type Pinger struct{ Client goredis.UniversalClient }

// Name names the check.
func (Pinger) Name() string { return "redis" }

// Ping checks that Redis answers; its error's Reason ("loading", "unreachable") carries no
// address.
func (p Pinger) Ping(ctx context.Context) error {
	err := p.Client.Ping(ctx).Err()
	switch {
	case err == nil:
		return nil
	case goredis.HasErrorPrefix(err, "LOADING"):
		return notReady{reason: "loading", err: err}
	default:
		return notReady{reason: "unreachable", err: err}
	}
}

// notReady is a failed readiness check: Reason is fit for anyone to read, Error for the logs.
type notReady struct {
	reason string
	err    error
}

func (e notReady) Error() string  { return e.reason + ": " + e.err.Error() }
func (e notReady) Unwrap() error  { return e.err }
func (e notReady) Reason() string { return e.reason }
