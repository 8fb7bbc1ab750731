package redis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

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
	keys, err := epoch.EpochKeys(ctx)
	if err != nil || len(keys) == 0 {
		t.Fatalf("EpochKeys = %v, %v", keys, err)
	}
	if cc, ok := r.Client.(*goredis.ClusterClient); ok { // one key per master
		var masters atomic.Int32
		_ = cc.ForEachMaster(ctx, func(context.Context, *goredis.Client) error { masters.Add(1); return nil })
		if len(keys) != int(masters.Load()) {
			t.Fatalf("%d epoch keys on a cluster of %d masters", len(keys), masters.Load())
		}
	}
	value := r.Client.Get(ctx, keys[0]).Val()
	if held, err := epoch.Held(ctx); err != nil || !held || value == "" {
		t.Fatalf("epoch after a stamp: %v, %v, %q", held, err, value)
	}
	if err := ready.Ping(ctx); err != nil {
		t.Fatalf("readiness with the epoch: %v", err)
	}
	third, _ := epoch.BeginCheck(ctx)
	if ok, _ := epoch.Stamp(ctx, third); !ok || r.Client.Get(ctx, keys[0]).Val() != value {
		t.Fatal("a second stamp changed the epoch")
	}
	// One master (on a Cluster, the last of them) loses its data: Redis no longer holds the
	// epoch until a whole pass stamps it again.
	if err := r.Client.Del(ctx, keys[len(keys)-1]).Err(); err != nil {
		t.Fatal(err)
	}
	if held, err := epoch.Held(ctx); err != nil || held {
		t.Fatalf("epoch with one of %d masters' keys lost: %v, %v; want not held", len(keys), held, err)
	}
	fourth, _ := epoch.BeginCheck(ctx)
	if ok, err := epoch.Stamp(ctx, fourth); err != nil || !ok {
		t.Fatalf("stamp of a whole pass: %v, %v", ok, err)
	}
	if held, err := epoch.Held(ctx); err != nil || !held {
		t.Fatalf("epoch after the next pass: %v, %v", held, err)
	}
}

// TestKeySlot: the slot of a key is Redis Cluster's (CLUSTER KEYSLOT).
func TestKeySlot(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]uint16{"foo": 12182, "bar": 5061, "123456789": 12739, "": 0} {
		if got := redisadapter.KeySlot(key); got != want {
			t.Errorf("KeySlot(%q) = %d, want %d", key, got, want)
		}
	}
}
