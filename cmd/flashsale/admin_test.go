package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testutil"
)

// startRole runs `flashsale args` as a child process until the test ends.
func startRole(t *testing.T, args string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"FLASHSALE_TEST_MAIN=" + args}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("flashsale %s stderr:\n%s", args, stderr.String())
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestWorkerAndConsumerServeHealthOnAdminAddr: the roles with no API, run as processes of their
// own, serve /healthz, /readyz and /metrics on ADMIN_ADDR; the worker is ready once its first
// pass over the live sales has stamped the Redis epoch.
func TestWorkerAndConsumerServeHealthOnAdminAddr(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	redis := testutil.NewRedis(t)
	broker := freeAddr(t)
	_, brokerPort, _ := net.SplitHostPort(broker)
	common := []string{"DATABASE_URL=" + testutil.NewDatabase(t), "REDIS_URL=" + testutil.RedisURL(),
		"REDIS_PREFIX=" + redis.Prefix, "ORDER_QUEUE=" + redis.Queue, "SALE_EVENTS_QUEUE=" + redis.Queue + "-sales",
		"KAFKA_EMBEDDED_PORT=" + brokerPort, "KAFKA_EMBEDDED_DIR=", "KAFKA_BROKERS=" + broker, "LOG_LEVEL=warn",
		"MAIL_DIR=" + t.TempDir(), "APP_ENV=test"}
	startRole(t, "broker", common...)
	worker, consumer := freeAddr(t), freeAddr(t)
	startRole(t, "worker", append(common, "ADMIN_ADDR="+worker)...)
	startRole(t, "consumer email", append(common, "ADMIN_ADDR="+consumer)...)

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for role, addr := range map[string]string{"worker": worker, "consumer email": consumer} {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			var code int
			var body string
			deadline := time.Now().Add(30 * time.Second)
			for {
				if code, body = get("http://" + addr + path); code == http.StatusOK || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if code != http.StatusOK {
				t.Fatalf("%s %s: %d %s", role, path, code, body)
			}
			switch path {
			case "/readyz":
				if !strings.Contains(body, `"postgres":"ok"`) || !strings.Contains(body, `"redis":"ok"`) {
					t.Errorf("%s /readyz: %s, want postgres and redis ok", role, body)
				}
			case "/metrics":
				if !strings.Contains(body, "flashsale_pool_connections") {
					t.Errorf("%s /metrics lacks the flashsale metrics", role)
				}
			}
		}
	}
}
