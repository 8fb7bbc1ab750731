package redis

import (
	"context"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
)

// RateLimiter counts requests per key in Redis (GCRA), shared by every API node.
type RateLimiter struct {
	limiter *redis_rate.Limiter
	prefix  string
}

// NewRateLimiter stores its counters under "rate:" + prefix (REDIS_PREFIX): redis_rate puts its
// own "rate:" in front of every key.
func NewRateLimiter(rdb goredis.UniversalClient, prefix string) *RateLimiter {
	return &RateLimiter{limiter: redis_rate.NewLimiter(rdb), prefix: prefix}
}

// Allow takes one request from key's budget of perMinute (bursts up to perMinute).
func (l *RateLimiter) Allow(ctx context.Context, key string, perMinute int) (allowed bool, remaining int, retryAfter, resetAfter time.Duration, err error) {
	res, err := l.limiter.Allow(ctx, l.prefix+":rl:"+key, redis_rate.PerMinute(perMinute))
	if err != nil {
		return false, 0, 0, 0, err
	}
	return res.Allowed > 0, res.Remaining, res.RetryAfter, res.ResetAfter, nil
}
