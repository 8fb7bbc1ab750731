package redis_test

import (
	"context"
	"crypto/tls"
	"errors"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// REDIS_URL picks the topology in go-redis's URL forms; TLS in each checks every server's
// certificate against the host it is reached at; replica reads are refused.
func TestNewClientTopologies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url     string
		cluster bool
		tls     bool
	}{
		{url: "redis://127.0.0.1:6379/0"},
		{url: "rediss://user:secret@cache.example:6380/2", tls: true},
		{url: "redis://127.0.0.1:26379/0?master_name=mymaster&addr=127.0.0.1:26380"},
		{url: "rediss://sentinel1.example:26379/0?master_name=mymaster&addr=sentinel2.example:26379&password=secret", tls: true},
		{url: "redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", cluster: true},
		{url: "rediss://user:secret@node1.example:6379?addr=node2.example:6379", cluster: true, tls: true},
	} {
		rdb, err := redisadapter.NewClient(tc.url)
		if err != nil {
			t.Errorf("NewClient(%s): %v", tc.url, err)
			continue
		}
		var tlsConfig *tls.Config
		switch c := rdb.(type) {
		case *goredis.ClusterClient:
			tlsConfig = c.Options().TLSConfig
		case *goredis.Client:
			tlsConfig = c.Options().TLSConfig
		}
		if c, ok := rdb.(*goredis.ClusterClient); ok != tc.cluster {
			t.Errorf("NewClient(%s) is a %T, want a cluster client: %v", tc.url, rdb, tc.cluster)
		} else if ok && c.Options().PoolSize != 10*runtime.GOMAXPROCS(0) {
			t.Errorf("NewClient(%s): %d connections per node, want as many as a single node's", tc.url, c.Options().PoolSize)
		}
		if (tlsConfig != nil) != tc.tls {
			t.Errorf("NewClient(%s): TLS %v, want %v", tc.url, tlsConfig != nil, tc.tls)
		}
		_ = rdb.Close()
	}
	for _, url := range []string{
		"redis://127.0.0.1:26379/0?master_name=mymaster&route_randomly=true",
		"redis://127.0.0.1:7000?addr=127.0.0.1:7001&read_only=true",
		"redis://127.0.0.1:6379?no_such_option=1",
		"http://127.0.0.1:6379",
	} {
		if rdb, err := redisadapter.NewClient(url); err == nil {
			_ = rdb.Close()
			t.Errorf("NewClient(%s) accepted", url)
		}
	}
}

// With REDIS_DURABILITY=replica a purchase's WAIT reaches the master that holds the sale, where
// it counts the replicas that acknowledged the reservation. On a cluster go-redis would send the
// keyless WAIT to any master, which would answer at once, having nothing of ours to wait for.
// Runs on a topology with a replica per master (the Cluster and Sentinel of scripts/test.sh).
func TestPurchaseWaitsOnTheSalesMaster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.NewRedis(t)
	perMaster := func(fn func(m goredis.UniversalClient) string) map[string]string {
		var mu sync.Mutex
		out := map[string]string{}
		if err := redisadapter.ForEachMaster(ctx, r.Client, func(ctx context.Context, m goredis.UniversalClient) error {
			v := fn(m)
			mu.Lock()
			defer mu.Unlock()
			out[m.(*goredis.Client).Options().Addr] = v
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	info := func(m goredis.UniversalClient, section string) string {
		s, err := m.Info(ctx, section).Result()
		if err != nil {
			t.Error(err)
		}
		return s
	}
	for addr, repl := range perMaster(func(m goredis.UniversalClient) string { return info(m, "replication") }) {
		if regexp.MustCompile(`connected_slaves:0\b`).MatchString(repl) {
			t.Skipf("master %s has no replica: run with TEST_REDIS_URL of ./scripts/redis-cluster.sh or ./scripts/redis-sentinel.sh", addr)
		}
	}
	waitCalls := func() map[string]string {
		calls := regexp.MustCompile(`cmdstat_wait:calls=(\d+)`)
		return perMaster(func(m goredis.UniversalClient) string {
			if c := calls.FindStringSubmatch(info(m, "commandstats")); c != nil {
				return c[1]
			}
			return "0"
		})
	}

	inv := redisadapter.NewInventory(r.Client, r.Prefix)
	purchases := redisadapter.NewPurchases(inv, redisadapter.Wait{Replicas: 1, Timeout: 5 * time.Second})
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	sale := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), Name: "s", PriceCents: 100, Currency: "EUR",
		TotalStock: 5, PerUserLimit: 2, StartsAt: start, EndsAt: start.Add(time.Hour)}
	if _, err := inv.SyncSale(ctx, sale, 0); err != nil {
		t.Fatal(err)
	}
	user := uuid.New()
	p := ports.Purchase{Scope: ports.IdempotencyScope{TenantID: sale.TenantID, UserID: user, Key: "k"}, Fingerprint: "fp",
		Lease: 30 * time.Second, TTL: time.Hour, Reservation: domain.Reservation{OrderID: uuid.New(), TenantID: sale.TenantID,
			SaleID: sale.ID, UserID: user, Quantity: 2, IdempotencyKey: "k"}}

	before := waitCalls()
	out, err := purchases.Purchase(ctx, p)
	if err != nil || out.Reserved.Reservation.OrderID != p.Reservation.OrderID {
		t.Fatalf("Purchase = %+v, %v; want it accepted", out, err)
	}
	after := waitCalls()
	holder := perMaster(func(m goredis.UniversalClient) string {
		return strconv.Itoa(len(testutil.Keys(ctx, m, r.Prefix+":*"+sale.ID.String()+"*")))
	})
	for addr, keys := range holder {
		b, _ := strconv.Atoi(before[addr])
		a, _ := strconv.Atoi(after[addr])
		// Its first purchase since the master started sends a second WAIT, after loading the script.
		if holds := keys != "0"; holds != (a > b) || !holds && a != b {
			t.Errorf("master %s (%s of the sale's keys) answered %d WAIT", addr, keys, a-b)
		}
	}
}

// On a cluster the readiness check pings every master: with one down it fails every time, not
// only when go-redis happens to pick that one.
func TestReadinessPingsEveryMaster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := testutil.StartRedisCluster(t, nil, nil, nil)
	rdb, err := redisadapter.Open(ctx, "redis://"+nodes[0].Addr+"?addr="+nodes[1].Addr+"&addr="+nodes[2].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ready := redisadapter.Pinger{Client: rdb}
	if err := ready.Ping(ctx); err != nil {
		t.Fatalf("readiness with every master up: %v", err)
	}
	_ = nodes[2].Client.ShutdownNoSave(ctx).Err()
	for range 6 {
		var reason interface{ Reason() string }
		if err := ready.Ping(ctx); !errors.As(err, &reason) || reason.Reason() != "unreachable" {
			t.Fatalf("readiness with master %s down: %v, want unreachable", nodes[2].Addr, err)
		}
	}
}
