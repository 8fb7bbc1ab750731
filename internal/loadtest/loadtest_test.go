package loadtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/loadtest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestSmallBurstIsCorrect is the test command's load test: 2,000 users against stock 200,
// through the real HTTP API of two API nodes of one system (the second an API only, on the
// same PostgreSQL and Redis), verified against the API and PostgreSQL. Correctness only: the
// timings are reported, never asserted.
func TestSmallBurstIsCorrect(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t)
	limits := func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
		c.RateLimitPurchase, c.RateLimitAuth = 100, 10 // the real limits: each user has its own IP
	}
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Configure: limits})
	second := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, Configure: limits, DatabaseURL: sys.Config.DatabaseURL,
		Redis: &testutil.Redis{Prefix: sys.Config.RedisPrefix, Queue: sys.Config.OrderQueue}})
	r, err := loadtest.NewRunner(context.Background(), loadtest.Config{
		URLs: []string{sys.URL, second.URL}, DatabaseURL: sys.Config.DatabaseURL, AdminEmail: sys.Config.AdminEmail,
		AdminPassword: testutil.AdminPassword, Users: 2000, Stock: 200, Limit: 1, Conns: 500,
		PoolSize: int(sys.Config.DBMaxConns), Label: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests answered in %.0f ms, p99 %.1f ms, sold %d, statuses %v, last order durable after %.0f ms, DB connections peak %d/%d",
		rep.Requests, rep.AnsweredIn, rep.Latency.P99, rep.Sold, rep.Statuses, rep.DurableAfter, rep.PeakDBConns, rep.PoolSize)
	if !rep.Correct {
		t.Fatalf("the load test found problems: %v", rep.Problems)
	}
	if rep.Sold != 200 || rep.Accepted != 200 || rep.Statuses["202"] != 200 || rep.Statuses["409 sold-out"] != 1800 {
		t.Fatalf("outcome: sold %d, accepted %d, statuses %v", rep.Sold, rep.Accepted, rep.Statuses)
	}
	// The system's own counts, on both nodes' /metrics and overviews, are the answers received.
	if rep.Counters == nil || !rep.Counters.Agree || rep.Counters.Metrics["accepted"] != 200 || rep.Counters.Overview["sold_out"] != 1800 {
		t.Fatalf("the system's counters: %+v (%s)", rep.Counters, rep.CountersNote)
	}
	if len(rep.Nodes) != 2 || rep.Nodes[0].Requests != 1000 || rep.Nodes[1].Requests != 1000 ||
		rep.Nodes[0].Accepted+rep.Nodes[1].Accepted != 200 || rep.Nodes[0].Accepted == 0 || rep.Nodes[1].Accepted == 0 {
		t.Fatalf("the purchases did not go through both nodes: %+v", rep.Nodes)
	}
}

// The closed loop (as wrk): each client sends its next purchase as soon as the last is
// answered, for the duration, and the run reports the CPU the named processes spent.
func TestClosedLoopIsCorrectAndReportsCPU(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Configure: func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	}})
	r, err := loadtest.NewRunner(context.Background(), loadtest.Config{
		URLs: []string{sys.URL}, DatabaseURL: sys.Config.DatabaseURL, AdminEmail: sys.Config.AdminEmail,
		AdminPassword: testutil.AdminPassword, Users: 100, Stock: 50, Limit: 1, Mode: "connections", Connections: 4,
		Duration: 5 * time.Second, CPUProcesses: []string{"redis-server"}, Label: "closed",
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests in %.0f ms (%.0f req/s), statuses %v, CPU %+v", rep.Requests, rep.AnsweredIn, rep.Throughput, rep.Statuses, rep.CPU)
	// How many purchases fit in the duration depends on the machine: only what a closed loop is
	// is asserted, not its pace.
	if !rep.Correct {
		t.Fatalf("the load test found problems: %v", rep.Problems)
	}
	if rep.Requests <= 4 || rep.Sold != min(50, rep.Statuses["202"]) {
		t.Fatalf("%d requests from 4 clients, sold %d, statuses %v: each client should go on buying until the duration ran out",
			rep.Requests, rep.Sold, rep.Statuses)
	}
	if len(rep.CPU) != 1 || rep.CPU[0].Process != "redis-server" || rep.CPU[0].Processes < 1 || rep.CPU[0].Seconds < 0 {
		t.Fatalf("CPU = %+v, want redis-server's", rep.CPU)
	}
}
