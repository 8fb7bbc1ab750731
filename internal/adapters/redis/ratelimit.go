package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/lua"
)

var gcraScript = goredis.NewScript(lua.GCRA)

// GateDecision is what the gate found for one request.
type GateDecision struct {
	// Allowed is false when the client is over its rate limit (always true when no limit applies).
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
	// SessionActive reports whether the caller's session is alive (true when none was asked).
	SessionActive bool
}

// Gate answers what the HTTP edge asks of every protected request: the rate-limit script (GCRA,
// counters shared by every API node) and the session check, pipelined into one round trip. The
// two keys live in different cluster slots, which a pipeline (unlike a script) allows.
type Gate struct {
	rdb      goredis.UniversalClient
	prefix   string
	sessions *Sessions
}

// NewGate keeps its counters under <prefix>:rl:.
func NewGate(rdb goredis.UniversalClient, prefix string, sessions *Sessions) *Gate {
	return &Gate{rdb: rdb, prefix: prefix, sessions: sessions}
}

// Check asks, in one round trip, whether the client is within its rate limit (client,
// perMinute; skipped when perMinute is 0) and whether its session is alive (skipped for uuid.Nil).
func (g *Gate) Check(ctx context.Context, client string, perMinute int, sessionID uuid.UUID) (GateDecision, error) {
	d := GateDecision{Allowed: true, SessionActive: true}
	keys := []string{rateKey(g.prefix, client)}
	args := []any{perMinute, perMinute, 60}
	var rate *goredis.Cmd
	var session *goredis.IntCmd
	run := func(pipe goredis.Pipeliner, eval func(goredis.Pipeliner) *goredis.Cmd) error {
		if perMinute > 0 {
			rate = eval(pipe)
		}
		if sessionID != uuid.Nil {
			session = pipe.Exists(ctx, sessionKey(g.prefix, sessionID))
		}
		return nil
	}
	_, err := g.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		return run(pipe, func(p goredis.Pipeliner) *goredis.Cmd { return gcraScript.EvalSha(ctx, p, keys, args...) })
	})
	if rate != nil && isNoScript(rate.Err()) { // first use since Redis started: send the script itself
		_, err = g.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
			return run(pipe, func(p goredis.Pipeliner) *goredis.Cmd { return gcraScript.Eval(ctx, p, keys, args...) })
		})
	}
	if err != nil {
		return d, unavailable(fmt.Errorf("edge gate: %w", err))
	}
	if rate != nil {
		v, err := rate.Slice()
		if err != nil || len(v) != 4 {
			return d, fmt.Errorf("edge gate: rate limit reply %v: %w", v, err)
		}
		d.Allowed = v[0].(int64) == 1
		d.Remaining = int(v[1].(int64))
		d.RetryAfter = seconds(v[2])
		d.ResetAfter = seconds(v[3])
	}
	if session != nil {
		d.SessionActive = session.Val() == 1
	}
	return d, nil
}

// rateKey is a client's rate-limit counter (GCRA).
func rateKey(prefix, key string) string { return prefix + ":rl:" + key }

func seconds(v any) time.Duration {
	s, _ := v.(string)
	f, _ := strconv.ParseFloat(s, 64)
	if f < 0 {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}
