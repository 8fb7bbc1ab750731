package metrics_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flashsale/flashsale/internal/adapters/metrics"
	"github.com/flashsale/flashsale/internal/ports"
)

// scrape reads the handler over HTTP, as Prometheus does, and parses the text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return families
}

func gauge(t *testing.T, families map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	mf, ok := families[name]
	if !ok {
		t.Fatalf("metric %s not exposed", name)
	}
	if mf.GetType() != dto.MetricType_GAUGE {
		t.Fatalf("%s is a %s, want a gauge", name, mf.GetType())
	}
	return mf
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestHandlerExposesDriftAndOutboxGauges(t *testing.T) {
	t.Parallel()
	p := metrics.New()
	tenant, other := uuid.New(), uuid.New()
	s1, s2, s3 := uuid.New(), uuid.New(), uuid.New()
	p.InventoryDrift(tenant, s1, 3)
	p.InventoryDrift(tenant, s2, -2)
	p.InventoryDrift(other, s3, 0)
	p.InventoryDrift(tenant, s1, 5) // the latest measurement replaces the earlier one
	p.OutboxBacklog(7, 90*time.Second+500*time.Millisecond)

	families := scrape(t, p.Handler())

	drift := gauge(t, families, "flashsale_inventory_drift_units")
	want := map[[2]string]float64{
		{tenant.String(), s1.String()}: 5,
		{tenant.String(), s2.String()}: -2,
		{other.String(), s3.String()}:  0,
	}
	if len(drift.GetMetric()) != len(want) {
		t.Fatalf("%d drift series, want %d: %v", len(drift.GetMetric()), len(want), drift)
	}
	for _, m := range drift.GetMetric() {
		l := labels(m)
		if len(l) != 2 {
			t.Fatalf("drift series labels %v, want exactly tenant and sale", l)
		}
		v, ok := want[[2]string{l["tenant"], l["sale"]}]
		if !ok || m.GetGauge().GetValue() != v {
			t.Fatalf("drift series %v = %v, want %v (known: %v)", l, m.GetGauge().GetValue(), v, ok)
		}
	}

	for name, v := range map[string]float64{
		"flashsale_outbox_pending_events":           7,
		"flashsale_outbox_oldest_event_age_seconds": 90.5,
	} {
		mf := gauge(t, families, name)
		if len(mf.GetMetric()) != 1 || len(mf.GetMetric()[0].GetLabel()) != 0 || mf.GetMetric()[0].GetGauge().GetValue() != v {
			t.Fatalf("%s = %v, want one unlabelled series of %v", name, mf.GetMetric(), v)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
	// The runtime collectors are registered on the same registry.
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("go_goroutines missing: Go collector not registered")
	}

	// The backlog drains: the gauges follow.
	p.OutboxBacklog(0, 0)
	families = scrape(t, p.Handler())
	for _, name := range []string{"flashsale_outbox_pending_events", "flashsale_outbox_oldest_event_age_seconds"} {
		if v := gauge(t, families, name).GetMetric()[0].GetGauge().GetValue(); v != 0 {
			t.Fatalf("%s = %v after the backlog drained, want 0", name, v)
		}
	}
}

// Each Prometheus has its own registry: two instances (two tests, two apps) do not collide.
func TestRegistriesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(), metrics.New()
	a.OutboxBacklog(4, time.Second)
	b.OutboxBacklog(1, time.Second)
	if v := gauge(t, scrape(t, a.Handler()), "flashsale_outbox_pending_events").GetMetric()[0].GetGauge().GetValue(); v != 4 {
		t.Fatalf("a's pending = %v, want 4", v)
	}
	if a.Registry() == b.Registry() {
		t.Fatal("two instances share a registry")
	}
	if _, ok := scrape(t, b.Handler())["flashsale_inventory_drift_units"]; ok {
		t.Fatal("b exposes drift series it never recorded")
	}
}

func counterValues(t *testing.T, families map[string]*dto.MetricFamily, name string) map[string]float64 {
	t.Helper()
	mf, ok := families[name]
	if !ok {
		t.Fatalf("metric %s not exposed", name)
	}
	if mf.GetType() != dto.MetricType_COUNTER || mf.GetHelp() == "" {
		t.Fatalf("%s is a %s (help %q), want a counter with help", name, mf.GetType(), mf.GetHelp())
	}
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		key := "" // by its one label, if any
		if l := m.GetLabel(); len(l) > 0 {
			key = l[0].GetValue()
		}
		out[key] = m.GetCounter().GetValue()
	}
	return out
}

// TestOrderTasksByResult: the Asynq worker's count of the order tasks it ran.
func TestOrderTasksByResult(t *testing.T) {
	t.Parallel()
	p := metrics.New()
	for _, result := range []string{"written", "written", "retried", "given_up", "written"} {
		p.OrderTask(result)
	}
	got := counterValues(t, scrape(t, p.Handler()), "flashsale_order_tasks_total")
	if got["written"] != 3 || got["retried"] != 1 || got["given_up"] != 1 || len(got) != 3 {
		t.Fatalf("order tasks %v, want written 3, retried 1, given_up 1", got)
	}
}

// TestPublishFailuresRestartsAndRelayState: the Kafka adapter's counts, and the relay's state
// as read at each scrape.
func TestPublishFailuresRestartsAndRelayState(t *testing.T) {
	t.Parallel()
	p := metrics.New()
	p.PublishFailed("fatal")
	p.PublishFailed("timeout")
	p.PublishFailed("timeout")
	p.ProducerRestarted()
	state := metrics.RelayState{Healthy: true, LastPublish: time.Unix(1700000000, 500_000_000), Published: 12, Resent: 3}
	p.WatchRelay(func() metrics.RelayState { return state })

	families := scrape(t, p.Handler())
	// Every kind is exposed from the start, at zero until it happens.
	want := map[string]float64{"fatal": 1, "timeout": 2, "delivery": 0, "produce": 0, "restarting": 0, "circuit_open": 0}
	if got := counterValues(t, families, "flashsale_kafka_publish_failures_total"); !maps.Equal(got, want) {
		t.Fatalf("publish failures %v, want %v", got, want)
	}
	if got := counterValues(t, families, "flashsale_kafka_producer_restarts_total"); got[""] != 1 {
		t.Fatalf("restarts %v, want 1", got)
	}
	for name, v := range map[string]float64{
		"flashsale_outbox_relay_healthy":                        1,
		"flashsale_outbox_relay_last_publish_timestamp_seconds": 1700000000.5,
	} {
		if got := gauge(t, families, name).GetMetric()[0].GetGauge().GetValue(); got != v {
			t.Fatalf("%s = %v, want %v", name, got, v)
		}
	}
	if got := counterValues(t, families, "flashsale_outbox_published_events_total"); got[""] != 12 {
		t.Fatalf("published %v, want 12", got)
	}
	if got := counterValues(t, families, "flashsale_outbox_resent_events_total"); got[""] != 3 {
		t.Fatalf("resent %v, want 3", got)
	}

	state = metrics.RelayState{} // unhealthy, never published
	families = scrape(t, p.Handler())
	for _, name := range []string{"flashsale_outbox_relay_healthy", "flashsale_outbox_relay_last_publish_timestamp_seconds"} {
		if got := gauge(t, families, name).GetMetric()[0].GetGauge().GetValue(); got != 0 {
			t.Fatalf("%s = %v, want 0", name, got)
		}
	}
}

// TestDriftOfEndedSalesGoes: a check that no longer covers a sale removes its drift series, so
// the series stay bounded by the live sales.
func TestDriftOfEndedSalesGoes(t *testing.T) {
	t.Parallel()
	p := metrics.New()
	tenant, live, ended := uuid.New(), uuid.New(), uuid.New()
	p.InventoryDrift(tenant, live, 1)
	p.InventoryDrift(tenant, ended, 2)
	p.DriftChecked([]ports.SaleRef{{TenantID: tenant, SaleID: live}})
	drift := gauge(t, scrape(t, p.Handler()), "flashsale_inventory_drift_units")
	if len(drift.GetMetric()) != 1 || labels(drift.GetMetric()[0])["sale"] != live.String() {
		t.Fatalf("drift series %v, want only the live sale's", drift.GetMetric())
	}
}
