package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/adapters/tracing"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestPurchaseIsOneTrace: a purchase is one trace from the HTTP request through the
// reservation, the queue, the worker's write, the outbox relay's publish and each consumer,
// every span a child of another span of the trace. Not parallel: the recording provider is the
// process's, and the test wants only its own system running (it still picks its spans by trace).
func TestPurchaseIsOneTrace(t *testing.T) {
	spans := testutil.RecordSpans(t)
	logs := &lockedBuffer{}
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Options: []fx.Option{
		// The system's logger as wiring makes it (tracing.LogHandler), into logs, at debug: the
		// access log line of the purchase names its trace.
		fx.Decorate(func() *slog.Logger {
			return slog.New(tracing.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		}),
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 10, 1, -time.Second, time.Hour)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]

	r := buy(t, c, sys.TokenFor(t, shopper), sale.Sale.ID, "traced-"+shopper.ID.String(), 1)
	if r.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	orderID := r.JSON(t)["id"].(string)

	consumers := []string{app.ConsumerEmail, app.ConsumerAnalytics, app.ConsumerInventorySync}
	want := []string{"PlaceOrder", "redis.Reserve", "asynq.enqueue order:create", "asynq.handle order:create",
		"postgres.SaveOrder", "kafka.publish " + domain.TopicOrderConfirmed}
	for _, g := range consumers {
		want = append(want, "kafka.consume "+g)
	}
	var chain []tracetest.SpanStub
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		chain = traceOf(spans.GetSpans(), "PlaceOrder")
		if gone := missing(chain, want); len(gone) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after 30 s the purchase's trace has no span %q; it has:%s", gone, describe(chain))
		}
	}

	root := chain[0].SpanContext.TraceID()
	ids := map[trace.SpanID]bool{}
	for _, s := range chain {
		ids[s.SpanContext.SpanID()] = true
	}
	for _, s := range chain {
		switch {
		case s.Name == "PlaceOrder":
			if s.Parent.IsValid() {
				t.Errorf("the request's span has a parent: %v", s.Parent)
			}
			if got := attr(s, "http.response.status_code"); got != "202" {
				t.Errorf("PlaceOrder span status code %q, want 202", got)
			}
		case !ids[s.Parent.SpanID()]:
			t.Errorf("span %q is not a child of a span of the trace (parent %s)", s.Name, s.Parent.SpanID())
		}
	}
	// Every span about this order, wherever it ran, is in the one trace.
	for _, s := range spans.GetSpans() {
		if attr(s, "flashsale.order_id") == orderID && s.SpanContext.TraceID() != root {
			t.Errorf("span %q of the order is in trace %s, not %s", s.Name, s.SpanContext.TraceID(), root)
		}
	}
	if !slices.ContainsFunc(logs.lines(), func(l map[string]any) bool {
		return l["msg"] == "http request" && l["method"] == "POST" && strings.HasSuffix(fmt.Sprint(l["path"]), "/orders") &&
			l["trace_id"] == root.String() && l["span_id"] == chain[0].SpanContext.SpanID().String()
	}) {
		t.Errorf("no access log line of the purchase carries trace_id %s", root)
	}
	if t.Failed() {
		t.Log(describe(chain))
	}
}

// lockedBuffer collects JSON log lines from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(b.buf.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestSystemExportsOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, a system's spans reach the
// collector over OTLP/HTTP under OTEL_SERVICE_NAME, flushed by the stop at the latest.
func TestSystemExportsOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var received []byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			received = append(received, body...)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true, Configure: func(c *config.Config) {
		c.OTLPEndpoint, c.ServiceName = collector.URL, "flashsale-e2e-otlp"
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 10, 1, -time.Second, time.Hour)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	if r := buy(t, c, sys.TokenFor(t, shopper), sale.Sale.ID, "otlp-"+shopper.ID.String(), 1); r.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	sys.Stop(t)
	mu.Lock()
	defer mu.Unlock()
	// The OTLP protobuf holds its strings as they are.
	for _, want := range []string{"flashsale-e2e-otlp", "PlaceOrder", "redis.Reserve"} {
		if !bytes.Contains(received, []byte(want)) {
			t.Errorf("the collector received no %q (%d bytes)", want, len(received))
		}
	}
}

// traceOf is the spans of the trace whose span is named root (the first such), that one first.
func traceOf(spans tracetest.SpanStubs, root string) []tracetest.SpanStub {
	i := slices.IndexFunc(spans, func(s tracetest.SpanStub) bool { return s.Name == root })
	if i < 0 {
		return nil
	}
	id := spans[i].SpanContext.TraceID()
	out := []tracetest.SpanStub{spans[i]}
	for j, s := range spans {
		if j != i && s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// missing is the names in want no span of chain has.
func missing(chain []tracetest.SpanStub, want []string) []string {
	var out []string
	for _, name := range want {
		if !slices.ContainsFunc(chain, func(s tracetest.SpanStub) bool { return s.Name == name }) {
			out = append(out, name)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

func describe(chain []tracetest.SpanStub) string {
	var b strings.Builder
	for _, s := range chain {
		fmt.Fprintf(&b, "\n  %s span=%s parent=%s %s", s.SpanContext.TraceID(), s.SpanContext.SpanID(), s.Parent.SpanID(), s.Name)
	}
	return b.String()
}
