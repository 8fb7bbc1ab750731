package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// newLimiterRedis is a private share of Redis for a rate limiter test.
func newLimiterRedis(t *testing.T) testutil.Redis {
	t.Helper()
	r := testutil.NewRedis(t)
	t.Cleanup(func() { // runs before NewRedis closes the client
		testutil.DeleteKeys(context.Background(), r.Client, "*"+r.Prefix+":rl:*")
	})
	return r
}

type allowResult struct {
	allowed                bool
	remaining              int
	retryAfter, resetAfter time.Duration
}

func allow(t *testing.T, l *redisadapter.Gate, key string, perMinute int) allowResult {
	t.Helper()
	d, err := l.Check(context.Background(), key, perMinute, uuid.Nil)
	if err != nil {
		t.Fatalf("Check(%s): %v", key, err)
	}
	return allowResult{d.Allowed, d.Remaining, d.RetryAfter, d.ResetAfter}
}

func newGate(c goredis.UniversalClient, prefix string) *redisadapter.Gate {
	return redisadapter.NewGate(c, prefix, redisadapter.NewSessions(c, prefix))
}

func TestRateLimiterBudget(t *testing.T) {
	t.Parallel()
	r := newLimiterRedis(t)
	l := newGate(r.Client, r.Prefix)
	const perMinute = 10
	const interval = time.Minute / perMinute // one token back every 6 s

	start := time.Now()
	for i := range perMinute {
		got := allow(t, l, "ip:192.0.2.1", perMinute)
		if !got.allowed || got.remaining != perMinute-1-i {
			t.Fatalf("call %d = %+v, want allowed with %d remaining", i+1, got, perMinute-1-i)
		}
	}
	for i := range 2 {
		got := allow(t, l, "ip:192.0.2.1", perMinute)
		if got.allowed || got.remaining != 0 {
			t.Fatalf("call %d = %+v, want refused with 0 remaining", perMinute+1+i, got)
		}
		// The next token comes back one interval after the first call took it: no later than
		// interval from now, and no earlier than interval minus the time spent since.
		elapsed := time.Since(start)
		if got.retryAfter <= 0 || got.retryAfter > interval || got.retryAfter < interval-elapsed {
			t.Fatalf("call %d: RetryAfter = %v, want within (0, %v] and at least %v",
				perMinute+1+i, got.retryAfter, interval, interval-elapsed)
		}
	}

	// Another key has a budget of its own, untouched by the first one's.
	if got := allow(t, l, "ip:192.0.2.2", perMinute); !got.allowed || got.remaining != perMinute-1 {
		t.Fatalf("first call on another key = %+v, want allowed with %d remaining", got, perMinute-1)
	}
	// ...and spending it does not give the first key anything back.
	if got := allow(t, l, "ip:192.0.2.1", perMinute); got.allowed {
		t.Fatalf("exhausted key allowed again: %+v", got)
	}
}

// Two API nodes, each with its own connection, count against one budget.
func TestRateLimiterSharedAcrossNodes(t *testing.T) {
	t.Parallel()
	r := newLimiterRedis(t)
	other, err := redisadapter.NewClient(testutil.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	nodes := []*redisadapter.Gate{
		newGate(r.Client, r.Prefix),
		newGate(other, r.Prefix),
	}
	const perMinute, callsPerNode = 10, 6

	var mu sync.Mutex
	allowed, refused := 0, 0
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range callsPerNode {
				d, err := l.Check(context.Background(), "user:shared", perMinute, uuid.Nil)
				ok := d.Allowed
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("Allow: %v", err)
				case ok:
					allowed++
				default:
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if allowed != perMinute || refused != 2*callsPerNode-perMinute {
		t.Fatalf("allowed %d, refused %d across two nodes; want %d allowed, %d refused",
			allowed, refused, perMinute, 2*callsPerNode-perMinute)
	}
}

// TestGateChecksTheSessionInTheSameRoundTrip: the gate answers the session question alongside
// the rate limit, and alone when no limit applies.
func TestGateChecksTheSessionInTheSameRoundTrip(t *testing.T) {
	t.Parallel()
	r := newLimiterRedis(t)
	ctx := context.Background()
	sessions := redisadapter.NewSessions(r.Client, r.Prefix)
	g := redisadapter.NewGate(r.Client, r.Prefix, sessions)
	live := domain.Session{ID: uuid.New(), TenantID: uuid.New(), UserID: uuid.New()}
	if err := sessions.CreateSession(ctx, live, "h", time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		perMinute int
		session   uuid.UUID
		active    bool
	}{
		{"live session with a limit", 10, live.ID, true},
		{"live session, no limit", 0, live.ID, true},
		{"unknown session with a limit", 10, uuid.New(), false},
		{"unknown session, no limit", 0, uuid.New(), false},
		{"no session asked", 10, uuid.Nil, true},
	} {
		d, err := g.Check(ctx, "ip:"+tc.name, tc.perMinute, tc.session)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d.SessionActive != tc.active || !d.Allowed {
			t.Errorf("%s: %+v, want session active %v and allowed", tc.name, d, tc.active)
		}
		if tc.perMinute > 0 && d.Remaining != tc.perMinute-1 {
			t.Errorf("%s: remaining %d, want %d", tc.name, d.Remaining, tc.perMinute-1)
		}
	}
	if err := sessions.RevokeSession(ctx, live.ID); err != nil {
		t.Fatal(err)
	}
	if d, err := g.Check(ctx, "", 0, live.ID); err != nil || d.SessionActive {
		t.Fatalf("after revocation: %+v, %v", d, err)
	}
}
