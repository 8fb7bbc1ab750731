package redis_test

import (
	"context"
	"errors"
	"testing"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/testutil"
)

// The epoch is stamped by a pass only if Redis kept the pass's key to the end: a Redis that lost
// its data during the pass is not marked as holding the live sales. A stamp keeps the epoch
// already there, and the readiness check fails while Redis holds none.
func TestEpoch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	epoch := redisadapter.NewEpoch(r.Client, r.Prefix)
	ready := redisadapter.Pinger{Client: r.Client, Epoch: epoch}
	if held, err := epoch.Held(ctx); err != nil || held {
		t.Fatalf("a new Redis holds the epoch: %v, %v", held, err)
	}
	var reason interface{ Reason() string }
	if err := ready.Ping(ctx); err == nil || !errors.As(err, &reason) || reason.Reason() != "data lost, rebuilding" {
		t.Fatalf("readiness without the epoch: %v", err)
	}

	// The data is lost during the pass: no stamp.
	token, err := epoch.BeginCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testutil.DeleteKeys(ctx, r.Client, r.Prefix+":*")
	if ok, err := epoch.Stamp(ctx, token); err != nil || ok {
		t.Fatalf("stamp after the data was lost mid-pass: %v, %v; want refused", ok, err)
	}
	// Another pass began since: the first one's stamp is refused, the second's taken.
	first, _ := epoch.BeginCheck(ctx)
	second, _ := epoch.BeginCheck(ctx)
	if ok, _ := epoch.Stamp(ctx, first); ok {
		t.Fatal("a pass overtaken by another stamped")
	}
	if ok, err := epoch.Stamp(ctx, second); err != nil || !ok {
		t.Fatalf("stamp of a whole pass: %v, %v", ok, err)
	}
	value := r.Client.Get(ctx, r.Prefix+":{epoch}").Val()
	if held, err := epoch.Held(ctx); err != nil || !held || value == "" {
		t.Fatalf("epoch after a stamp: %v, %v, %q", held, err, value)
	}
	if err := ready.Ping(ctx); err != nil {
		t.Fatalf("readiness with the epoch: %v", err)
	}
	third, _ := epoch.BeginCheck(ctx)
	if ok, _ := epoch.Stamp(ctx, third); !ok || r.Client.Get(ctx, r.Prefix+":{epoch}").Val() != value {
		t.Fatal("a second stamp changed the epoch")
	}
}
