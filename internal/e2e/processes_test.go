package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// serveProcess starts `flashsale serve` as a process of its own, on a's PostgreSQL and Redis
// (same key prefix, same queues, same signing key), and returns its base URL. It shares nothing
// with the test process but those two servers.
func serveProcess(t *testing.T, a *testutil.System, env ...string) string {
	t.Helper()
	bin := flashsaleBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := a.Config
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "APP_ENV=test", "LOG_LEVEL=warn", "HTTP_ADDR="+addr,
		"DATABASE_URL="+c.DatabaseURL, "REDIS_URL="+c.RedisURL, "REDIS_PREFIX="+c.RedisPrefix,
		"ORDER_QUEUE="+c.OrderQueue, "SALE_EVENTS_QUEUE="+c.SaleEventsQueue,
		"ADMIN_EMAIL="+c.AdminEmail, "ADMIN_PASSWORD="+c.AdminPassword, "BCRYPT_COST=4",
		"JWT_SECRET="+c.JWTSecret, "JWT_KEY_ID="+c.JWTKeyID, "RATE_LIMIT_PURCHASE_PER_MIN=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	testutil.WaitFor(t, 30*time.Second, "the serve process to answer", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// TestLiveAcrossProcesses: node A is a system in the test process (API and worker), node B a
// `flashsale serve` process. A purchase through B reaches A's clients as inventory:updated (B's
// API -> Redis -> A's hub); the order A's worker confirms reaches the buyer's connection on B
// (A -> Redis -> B's hub) and nobody else's.
func TestLiveAcrossProcesses(t *testing.T) {
	t.Parallel()
	a := testutil.StartSystem(t, testutil.SystemOptions{})
	bURL := serveProcess(t, a)
	cb := testutil.NewClient(bURL)
	_, adminToken := a.Admin(t)
	users := a.CreateUsers(t, 2, domain.RoleShopper)
	buyer, other := a.TokenFor(t, users[0]), a.TokenFor(t, users[1])

	anonA := dialLive(t, a.URL, "?tenant="+domain.DefaultTenantSlug, nil)
	buyerB := dialLive(t, bURL, "", bearer(buyer))
	otherB := dialLive(t, bURL, "", bearer(other))
	otherA := dialLive(t, a.URL, "", cookie(other))

	sale := a.CreateSale(t, 5, 2, -time.Second, time.Hour)
	barrier := a.CreateSale(t, 1, 1, time.Hour, time.Hour)
	saleID := sale.Sale.ID.String()

	r := buy(t, cb, buyer, sale.Sale.ID, "processes-buyer", 2)
	if r.Status != http.StatusAccepted {
		t.Fatalf("buy through the serve process: %d %s", r.Status, r.Body)
	}
	order := orderID(t, r)
	inv := anonA.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == saleID })
	if d := inv.data(t); d.Remaining != 3 || d.TotalStock != 5 {
		t.Fatalf("inventory:updated on A after a purchase on B: %s, want remaining 3 of 5", inv.Data)
	}
	confirmed := buyerB.await(domain.LiveOrderConfirmed, nil)
	if d := confirmed.data(t); d.OrderID != order || d.Quantity != 2 || d.Status != "confirmed" {
		t.Fatalf("order:confirmed on B: %s, want order %s, 2 units", confirmed.Data, order)
	}

	// Barrier (a change made through B): once a connection has it, it has everything before it.
	patchSale(t, cb, adminToken, barrier.Sale.ID, map[string]any{"name": "barrier"})
	for name, l := range map[string]*liveConn{"other user on B": otherB, "other user on A": otherA, "anonymous on A": anonA} {
		l.await(domain.LiveInventoryUpdated, func(m liveMessage) bool { return m.SaleID == barrier.Sale.ID.String() })
		if got := confirmedOrders(t, l.drain()); len(got) != 0 {
			t.Errorf("%s received order:confirmed %v, meant for the buyer only", name, got)
		}
	}
}

// TestRateLimitAcrossProcesses: the per-IP limit on /v1/auth/* holds across an API in the test
// process and a `flashsale serve` process sharing one Redis: 10 a minute in total, not per node.
func TestRateLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	const limit = 10
	a := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true,
		Configure: func(c *config.Config) { c.RateLimitAuth = limit }})
	bURL := serveProcess(t, a, fmt.Sprintf("RATE_LIMIT_AUTH_PER_MIN=%d", limit))
	nodes := []*testutil.Client{testutil.NewClient(a.URL), testutil.NewClient(bURL)}
	statuses := map[int]int{}
	var limited testutil.Response
	for i := range limit + 2 {
		r := nodes[i%2].Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
			Body: map[string]any{"email": "nobody@test.local", "password": "wrong-password-123"}})
		statuses[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			limited = r
		}
	}
	if statuses[http.StatusUnauthorized] != limit || statuses[http.StatusTooManyRequests] != 2 {
		t.Fatalf("statuses over two processes: %v, want %d × 401 then 2 × 429", statuses, limit)
	}
	if limited.Header.Get("Retry-After") == "" || limited.ProblemType() != "rate-limited" {
		t.Fatalf("429 answer: Retry-After %q, type %q", limited.Header.Get("Retry-After"), limited.ProblemType())
	}
}
