package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// brokerProcess is `flashsale broker` run as a process of its own, as roles run as separate
// processes use it locally.
type brokerProcess struct {
	t    *testing.T
	bin  string
	port int
	dir  string // KAFKA_EMBEDDED_DIR; empty: in memory
	cmd  *exec.Cmd
}

func startBrokerProcess(t *testing.T, dir string) *brokerProcess {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	b := &brokerProcess{t: t, bin: flashsaleBinary(t), port: port, dir: dir}
	b.start()
	t.Cleanup(func() {
		if b.cmd != nil {
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			_ = b.cmd.Wait()
		}
	})
	return b
}

// start runs the broker and waits until it accepts connections.
func (b *brokerProcess) start() {
	b.t.Helper()
	cmd := exec.Command(b.bin, "broker")
	cmd.Env = append(os.Environ(), "APP_ENV=test", "LOG_LEVEL=warn", "KAFKA_PARTITIONS=3",
		"KAFKA_EMBEDDED_PORT="+strconv.Itoa(b.port), "KAFKA_EMBEDDED_DIR="+b.dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.cmd = cmd
	testutil.WaitFor(b.t, 20*time.Second, "the broker process to listen", func() bool {
		conn, err := net.DialTimeout("tcp", b.addr(), 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	})
}

// kill SIGKILLs the broker: nothing is written on the way out.
func (b *brokerProcess) kill() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	_ = b.cmd.Wait()
	b.cmd = nil
}

func (b *brokerProcess) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// adminGet reads one admin endpoint.
func adminGet(t *testing.T, sys *testutil.System, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(sys.AdminURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// metricValue is the value of an unlabelled series in the admin listener's /metrics (0 if absent).
func metricValue(t *testing.T, sys *testutil.System, name string) float64 {
	t.Helper()
	_, body := adminGet(t, sys, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// checkEveryGroupOnce: every consumer group applied each of the orders once, the mail went out
// once per order, the figures count each order once, and Redis and PostgreSQL agree.
func checkEveryGroupOnce(t *testing.T, sys *testutil.System, mailer *flakyMailer, saleID uuid.UUID, ids []uuid.UUID, units int) {
	t.Helper()
	waitFigures(t, sys, saleID, len(ids), units)
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("%d mails", len(ids)), func() bool {
		_, distinct := mailer.sends()
		return distinct == len(ids)
	})
	for _, g := range consumerGroups {
		testutil.WaitFor(t, 60*time.Second, g+" to apply every event", func() bool {
			return processedCount(t, sys, g) == len(ids)
		})
	}
	stats, sold, _ := saleFigures(t, sys, saleID)
	if stats.Orders != len(ids) || stats.Units != units || sold != units {
		t.Fatalf("figures: %+v, sold %d; want %d orders, %d units", stats, sold, len(ids), units)
	}
	checkOneMailPerOrder(t, sys, ids)
	if total, distinct := mailer.sends(); total != len(ids) || distinct != len(ids) {
		t.Fatalf("mails sent %d (%d distinct), want %d once each", total, distinct, len(ids))
	}
	wantNoDrift(t, sys, saleID, units)
}

// TestBrokerKilledAndRestarted: the broker runs as a process of its own (`flashsale broker`)
// and is SIGKILLed during a sale, then restarted within 2 s; orders go on meanwhile. In memory
// it comes back empty: the relay's idempotent producer fails fatally ("out of order sequence
// number") and is replaced, and the relay sends again what the broker lost. With
// KAFKA_EMBEDDED_DIR it comes back with its log. Either way the outbox drains within seconds
// and every consumer group applies every event exactly once. Then (with a directory) the broker
// stays down: the admin listener's /readyz and the relay's gauge say the relay cannot publish,
// until it is back.
func TestBrokerKilledAndRestarted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dir  bool
	}{{"in memory", false}, {"with KAFKA_EMBEDDED_DIR", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := ""
			if tc.dir {
				dir = t.TempDir()
			}
			brokerKilledAndRestarted(t, dir)
		})
	}
}

func brokerKilledAndRestarted(t *testing.T, dir string) {
	broker := startBrokerProcess(t, dir)
	mailer := newFlakyMailer()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, ExternalBroker: true,
		Options: []fx.Option{mailer.option()},
		Configure: func(c *config.Config) {
			c.KafkaEmbeddedPort = broker.port
			c.AdminAddr = "127.0.0.1:0"
			c.RelayUnhealthyAfter = time.Second
		}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 500, 50, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 8, domain.RoleShopper)
	kin := newKafkaInspector(t, sys)
	ctx := context.Background()
	drained := func() bool {
		pending, _, err := sys.Store.Backlog(ctx)
		return err == nil && pending == 0
	}

	ids, units := purchaseMany(t, sys, c, sale.Sale.ID, shoppers, 20, "before-kill")
	waitConfirmed(t, sys, ids)
	testutil.WaitFor(t, 30*time.Second, "the relay to publish the first orders", drained)
	kin.waitAllConsumed(t)
	if code, body := adminGet(t, sys, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the kill = %d %s", code, body)
	}

	// kill -9, orders while it is down, back within 2 s.
	broker.kill()
	killedAt := time.Now()
	more, u := purchaseMany(t, sys, c, sale.Sale.ID, shoppers, 20, "broker-killed")
	ids, units = append(ids, more...), units+u
	time.Sleep(time.Until(killedAt.Add(1500 * time.Millisecond)))
	broker.start()
	restartedAt := time.Now()
	waitConfirmed(t, sys, ids)
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain after the restart", drained)
	drainedIn := time.Since(restartedAt)
	checkEveryGroupOnce(t, sys, mailer, sale.Sale.ID, ids, units)
	kin.waitAllConsumed(t)
	restarts := metricValue(t, sys, "flashsale_kafka_producer_restarts_total")
	t.Logf("broker down %s; outbox drained %s after the restart; producer restarts %v (fatal publish failures %v); events sent again %d",
		restartedAt.Sub(killedAt).Round(time.Millisecond), drainedIn.Round(time.Millisecond), restarts,
		metricValue(t, sys, `flashsale_kafka_publish_failures_total{kind="fatal"}`), sys.App.RelayOutbox.Status().Resent)
	if dir == "" && (restarts < 1 || sys.App.RelayOutbox.Status().Resent == 0) {
		t.Fatalf("in memory the broker came back empty, yet %v producer restarts and %d events sent again",
			restarts, sys.App.RelayOutbox.Status().Resent)
	}
	if dir != "" && sys.App.RelayOutbox.Status().Resent != 0 {
		t.Fatalf("the broker kept its log, yet %d events were sent again", sys.App.RelayOutbox.Status().Resent)
	}
	if dir == "" {
		return
	}

	// Down for longer: the relay reports it cannot publish, and recovers by itself.
	broker.kill()
	more, u = purchaseMany(t, sys, c, sale.Sale.ID, shoppers, 5, "broker-down")
	ids, units = append(ids, more...), units+u
	var body string
	testutil.WaitFor(t, 30*time.Second, "/readyz to report the relay", func() bool {
		var code int
		code, body = adminGet(t, sys, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "outbox-relay") && strings.Contains(body, "5 events waiting")
	})
	t.Logf("/readyz while the broker is down: %s", strings.TrimSpace(body))
	if v := metricValue(t, sys, "flashsale_outbox_relay_healthy"); v != 0 {
		t.Fatalf("flashsale_outbox_relay_healthy = %v while the relay cannot publish", v)
	}
	if code, _ := adminGet(t, sys, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d: the process is alive", code)
	}
	broker.start()
	restartedAt = time.Now()
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain after the second restart", drained)
	t.Logf("outbox drained %s after the second restart", time.Since(restartedAt).Round(time.Millisecond))
	testutil.WaitFor(t, 10*time.Second, "/readyz to be ready again", func() bool {
		code, _ := adminGet(t, sys, "/readyz")
		return code == http.StatusOK
	})
	if v := metricValue(t, sys, "flashsale_outbox_relay_healthy"); v != 1 {
		t.Fatalf("flashsale_outbox_relay_healthy = %v after the broker came back", v)
	}
	checkEveryGroupOnce(t, sys, mailer, sale.Sale.ID, ids, units)
	kin.waitAllConsumed(t)
	if dl := kin.readDLQ(t); len(dl) != 0 {
		t.Fatalf("%d dead letters after broker restarts, e.g. %v", len(dl), headerMap(dl[0]))
	}
}

// TestEmbeddedBrokerRestartedEmpty: the embedded broker keeps its log in memory and restarts
// empty while the email group is behind (the mail server down, nothing mailed yet). The relay
// sees the broker's new incarnation and sends every event again: the email group gets each
// order, analytics and inventory-sync ignore the copies, and nothing drifts.
func TestEmbeddedBrokerRestartedEmpty(t *testing.T) {
	t.Parallel()
	const orders = 60
	mailer := newFlakyMailer()
	mailer.down.Store(true)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Options: []fx.Option{mailer.option()}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 500, 50, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 8, domain.RoleShopper)
	ctx := context.Background()

	ids, units := purchaseMany(t, sys, c, sale.Sale.ID, shoppers, orders, "before-restart")
	waitConfirmed(t, sys, ids)
	testutil.WaitFor(t, 30*time.Second, "the relay to publish every order", func() bool {
		pending, _, err := sys.Store.Backlog(ctx)
		return err == nil && pending == 0
	})
	waitFigures(t, sys, sale.Sale.ID, orders, units)
	testutil.WaitFor(t, 30*time.Second, "the email group to be stuck on the mail server", func() bool {
		return mailer.refused.Load() >= 3
	})
	if n := processedCount(t, sys, app.ConsumerEmail); n != 0 {
		t.Fatalf("the email group applied %d events with the mail server down", n)
	}

	if err := sys.Broker.Restart(); err != nil { // in memory: back empty, under a new cluster id
		t.Fatal(err)
	}
	restartedAt := time.Now()
	testutil.WaitFor(t, 30*time.Second, "the relay to send every event again", func() bool {
		s := sys.App.RelayOutbox.Status()
		pending, _, err := sys.Store.Backlog(ctx)
		return s.Resent == orders && err == nil && pending == 0
	})
	t.Logf("every event sent again %s after the restart", time.Since(restartedAt).Round(time.Millisecond))
	kin := newKafkaInspector(t, sys)
	if n := kin.published(t); n < orders {
		t.Fatalf("%d messages on the restarted broker, want every one of the %d events", n, orders)
	}

	mailer.down.Store(false)
	checkEveryGroupOnce(t, sys, mailer, sale.Sale.ID, ids, units)
	kin.waitAllConsumed(t)
	for _, g := range consumerGroups {
		if n := processedCount(t, sys, g); n != orders {
			t.Fatalf("%s applied %d events, want %d", g, n, orders)
		}
	}
}
