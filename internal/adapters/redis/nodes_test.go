package redis_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/testutil"
)

// A node whose lease runs out without leaving is dead until forgotten; one that leaves, or
// keeps renewing, is not.
func TestNodeLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	nodes := redisadapter.NewNodes(r.Client, r.Prefix)
	log := slog.New(slog.DiscardHandler)
	holding := true
	crashed := redisadapter.NewNodeLease(nodes, "crashed", 300*time.Millisecond, func() bool { return holding }, log)
	clean := redisadapter.NewNodeLease(nodes, "clean", 300*time.Millisecond, nil, log)
	alive := redisadapter.NewNodeLease(nodes, "alive", 300*time.Millisecond, nil, log)
	for _, l := range []*redisadapter.NodeLease{crashed, clean, alive} {
		if err := l.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = alive.Stop(ctx) })
	if dead, err := nodes.Dead(ctx); err != nil || len(dead) != 0 {
		t.Fatalf("Dead with every lease held = %v, %v", dead, err)
	}
	if err := crashed.Stop(ctx); err != nil { // still holding orders: it does not leave
		t.Fatal(err)
	}
	if err := clean.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // past the lease; "alive" renewed meanwhile
	dead, err := nodes.Dead(ctx)
	if err != nil || !slices.Equal(dead, []string{"crashed"}) {
		t.Fatalf("Dead = %v, %v; want [crashed]", dead, err)
	}
	if err := nodes.Forget(ctx, "crashed"); err != nil {
		t.Fatal(err)
	}
	if dead, err := nodes.Dead(ctx); err != nil || len(dead) != 0 {
		t.Fatalf("Dead after Forget = %v, %v", dead, err)
	}
}
