package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestReadinessWhileTheDatabaseRefusesWrites: /readyz answers 503 while PostgreSQL is read-only,
// naming the dependency and why, and nothing of its address or user; 200 once it takes writes.
func TestReadinessWhileTheDatabaseRefusesWrites(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	u, err := url.Parse(sys.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, testutil.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	readOnly := func(on bool) {
		t.Helper()
		stmt := "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " RESET default_transaction_read_only"
		if on {
			stmt = "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " SET default_transaction_read_only = on"
		}
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
		// Sessions take the setting when they start: end the system's, its pool opens new ones.
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db); err != nil {
			t.Fatal(err)
		}
	}

	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"}); r.Status != http.StatusOK {
		t.Fatalf("readyz before: %d %s", r.Status, r.Body)
	}
	readOnly(true)
	var r testutil.Response
	// (The first probe may meet a connection just ended: "postgres unreachable".)
	testutil.WaitFor(t, 10*time.Second, "readyz to answer 503 read-only", func() bool {
		r = c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"})
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "read-only")
	})
	detail, _ := r.JSON(t)["detail"].(string)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %v", r.Header)
	}
	if r.ProblemType() != "unavailable" || detail != "not ready: postgres read-only" {
		t.Fatalf("readyz while read-only: %s, want detail %q", r.Body, "not ready: postgres read-only")
	}
	for _, secret := range []string{u.Host, u.Hostname(), u.Port(), "postgres://", db, "SQLSTATE"} {
		if secret != "" && strings.Contains(string(r.Body), secret) {
			t.Errorf("readyz shows %q to an anonymous caller: %s", secret, r.Body)
		}
	}
	readOnly(false)
	testutil.WaitFor(t, 10*time.Second, "readyz to answer 200 again", func() bool {
		return c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"}).Status == http.StatusOK
	})
}

// The API node's readiness includes its bootstrap (the default tenant and admin): a login right
// after a 200 works.
func TestReadinessIncludesTheBootstrap(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	r := c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"})
	checks, _ := r.JSON(t)["checks"].(map[string]any)
	if r.Status != http.StatusOK || checks["bootstrap"] != "ok" {
		t.Fatalf("readyz = %d %s; want 200 with the bootstrap check ok", r.Status, r.Body)
	}
	login := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
		Body: map[string]any{"email": sys.Config.AdminEmail, "password": testutil.AdminPassword}})
	if login.Status != http.StatusOK {
		t.Fatalf("admin login right after readiness = %d %s", login.Status, login.Body)
	}
}

// TestReadinessWhileRedisHasLostItsData: Redis comes back empty (this system's keys deleted, as
// a restart without persistence would). The API's /readyz and the worker's (ADMIN_ADDR) answer
// 503 naming Redis and why, and nothing of its address, until a pass over the live sales has
// rebuilt their inventories and stamped the epoch; /healthz (liveness) stays 200 throughout.
// The worker's passes are held back here (NODE_CHECK_INTERVAL 1h) and one is run by hand.
func TestReadinessWhileRedisHasLostItsData(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Redis: &r, Configure: func(c *config.Config) {
		c.AdminAddr = "127.0.0.1:0"
		c.NodeCheckInterval = time.Hour
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 7, 2, -time.Second, time.Hour)
	ready := func() (api testutil.Response, worker string, workerCode int) {
		api = c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"})
		workerCode, worker = adminGet(t, sys, "/readyz")
		return api, worker, workerCode
	}
	if api, worker, code := ready(); api.Status != http.StatusOK || code != http.StatusOK {
		t.Fatalf("readyz before the loss: API %d %s, worker %d %s", api.Status, api.Body, code, worker)
	}

	ctx := context.Background()
	testutil.DeleteKeys(ctx, sys.Redis, r.Prefix+":*")
	api, worker, code := ready()
	detail, _ := api.JSON(t)["detail"].(string)
	if api.Status != http.StatusServiceUnavailable || detail != "not ready: redis data lost, rebuilding" {
		t.Fatalf("API readyz after the loss: %d %s, want 503 %q", api.Status, api.Body, "not ready: redis data lost, rebuilding")
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(worker, `"redis":"unavailable: data lost, rebuilding"`) {
		t.Fatalf("worker readyz after the loss: %d %s", code, worker)
	}
	for _, secret := range []string{testutil.RedisURL(), "127.0.0.1:6379", "redis://", r.Prefix} {
		if strings.Contains(string(api.Body), secret) || strings.Contains(worker, secret) {
			t.Errorf("readyz shows %q: API %s, worker %s", secret, api.Body, worker)
		}
	}
	if h := c.Do(t, testutil.Request{Method: "GET", Path: "/healthz"}); h.Status != http.StatusOK {
		t.Errorf("API healthz while Redis rebuilds: %d, want 200 (liveness only)", h.Status)
	}
	if code, body := adminGet(t, sys, "/healthz"); code != http.StatusOK {
		t.Errorf("worker healthz while Redis rebuilds: %d %s, want 200", code, body)
	}

	// The worker's pass: the live sale is rebuilt from PostgreSQL and the epoch stamped.
	if n, err := sys.App.Reconcile.RolledBack(ctx); err != nil || n != 1 {
		t.Fatalf("the pass after the loss: %d restored, %v; want the live sale", n, err)
	}
	if inv, ok, err := sys.App.Reconcile.Stock.Inventory.Inventory(ctx, sale.Sale.TenantID, sale.Sale.ID); err != nil || !ok || inv.Remaining != 7 {
		t.Fatalf("the sale's inventory after the pass: %+v, %v, %v", inv, ok, err)
	}
	if api, worker, code := ready(); api.Status != http.StatusOK || code != http.StatusOK {
		t.Fatalf("readyz once rebuilt: API %d %s, worker %d %s", api.Status, api.Body, code, worker)
	}
}

// TestTheWorkerRebuildsALostRedisWithinSeconds: with the worker's own passes (each
// NODE_CHECK_INTERVAL), readiness comes back by itself after Redis lost its data.
func TestTheWorkerRebuildsALostRedisWithinSeconds(t *testing.T) {
	t.Parallel()
	r := testutil.NewRedis(t)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Redis: &r, Configure: func(c *config.Config) {
		c.NodeCheckInterval = 500 * time.Millisecond
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 3, 1, -time.Second, time.Hour)
	testutil.DeleteKeys(context.Background(), sys.Redis, r.Prefix+":*")
	lost := time.Now()
	testutil.WaitFor(t, 10*time.Second, "readyz to answer 200 again", func() bool {
		return c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"}).Status == http.StatusOK
	})
	t.Logf("ready again %v after the loss", time.Since(lost).Round(time.Millisecond))
	if _, ok, err := sys.App.Reconcile.Stock.Inventory.Inventory(context.Background(), sale.Sale.TenantID, sale.Sale.ID); err != nil || !ok {
		t.Fatalf("the sale's inventory once ready: %v, %v; want it rebuilt", ok, err)
	}
}
