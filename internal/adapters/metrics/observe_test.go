package metrics_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale/internal/adapters/metrics"
)

// series finds the series of name with exactly labels, failing when it is not exposed.
func series(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mf, ok := families[name]
	if !ok {
		t.Fatalf("metric %s not exposed", name)
	}
	if mf.GetHelp() == "" {
		t.Errorf("%s has no help text", name)
	}
next:
	for _, m := range mf.GetMetric() {
		l := labels(m)
		if len(l) != len(want) {
			continue
		}
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s has no series %v: %v", name, want, mf.GetMetric())
	return nil
}

// TestRequestsAndPurchases: the http adapter's counts, by operation and code, with their
// latencies; the purchase outcomes; each operation's histogram exists before its first request.
func TestRequestsAndPurchases(t *testing.T) {
	t.Parallel()
	p := metrics.New()
	p.ExposeOperations([]string{"placeOrder", "getSale"}, []string{"accepted", "sold_out"})
	for range 3 {
		p.Request("placeOrder", 202, 3*time.Millisecond)
	}
	p.Request("placeOrder", 409, 2*time.Millisecond)
	p.Purchase("accepted")
	p.Purchase("accepted")
	p.ReservationTook(500 * time.Microsecond)
	p.OrderWritten(1500 * time.Millisecond)

	f := scrape(t, p.Handler())
	if v := series(t, f, "flashsale_http_requests_total", map[string]string{"operation": "placeOrder", "code": "202"}).GetCounter().GetValue(); v != 3 {
		t.Errorf("placeOrder 202 = %v, want 3", v)
	}
	if v := series(t, f, "flashsale_http_requests_total", map[string]string{"operation": "placeOrder", "code": "409"}).GetCounter().GetValue(); v != 1 {
		t.Errorf("placeOrder 409 = %v, want 1", v)
	}
	if h := series(t, f, "flashsale_http_request_duration_seconds", map[string]string{"operation": "placeOrder"}).GetHistogram(); h.GetSampleCount() != 4 {
		t.Errorf("placeOrder latencies %d, want 4", h.GetSampleCount())
	}
	if h := series(t, f, "flashsale_http_request_duration_seconds", map[string]string{"operation": "getSale"}).GetHistogram(); h.GetSampleCount() != 0 {
		t.Errorf("getSale latencies %d before any request, want 0", h.GetSampleCount())
	}
	if v := series(t, f, "flashsale_purchases_total", map[string]string{"outcome": "accepted"}).GetCounter().GetValue(); v != 2 {
		t.Errorf("accepted = %v, want 2", v)
	}
	if v := series(t, f, "flashsale_purchases_total", map[string]string{"outcome": "sold_out"}).GetCounter().GetValue(); v != 0 {
		t.Errorf("sold_out = %v, want 0", v)
	}
	if h := series(t, f, "flashsale_reservation_duration_seconds", nil).GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("reservations %d, want 1", h.GetSampleCount())
	}
	if h := series(t, f, "flashsale_order_durable_delay_seconds", nil).GetHistogram(); h.GetSampleSum() != 1.5 {
		t.Errorf("durable delay sum %v, want 1.5", h.GetSampleSum())
	}
}

// TestScrapeTimeCollectors: queues, pools, the hub, live sales, consumers and the breaker are
// read when scraped, and a sale no longer live has no series.
func TestScrapeTimeCollectors(t *testing.T) {
	t.Parallel()
	p := metrics.New()
	tenant, sale := uuid.New(), uuid.New()
	live := []metrics.SaleState{{TenantID: tenant, SaleID: sale, Remaining: 7, Sold: 3}}
	breaker := "closed"
	p.WatchQueues(func() ([]metrics.QueueState, error) {
		return []metrics.QueueState{{Queue: "orders", Pending: 5, Archived: 1, OldestPending: 2 * time.Second}}, nil
	})
	p.WatchPools(map[string]func() metrics.PoolState{
		"postgres": func() metrics.PoolState { return metrics.PoolState{InUse: 3, Idle: 1, Max: 8, Waits: 4, Timeouts: 1} },
	})
	p.WatchLive(func() metrics.LiveState { return metrics.LiveState{Connections: 2, Sent: 10, Dropped: 1} })
	p.WatchSales(func() []metrics.SaleState { return live })
	p.WatchBreaker(func() string { return breaker })
	p.WatchConsumers(func() []metrics.ConsumerState {
		return []metrics.ConsumerState{{Group: "email", DeadLettered: 2,
			Partitions: []metrics.PartitionLag{{Topic: "order.confirmed", Partition: 0, Lag: 9}}}}
	})

	f := scrape(t, p.Handler())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flashsale_queue_tasks", map[string]string{"queue": "orders", "state": "pending"}, 5},
		{"flashsale_queue_tasks", map[string]string{"queue": "orders", "state": "archived"}, 1},
		{"flashsale_queue_oldest_pending_age_seconds", map[string]string{"queue": "orders"}, 2},
		{"flashsale_queue_inspect_up", nil, 1},
		{"flashsale_pool_connections", map[string]string{"pool": "postgres", "state": "in_use"}, 3},
		{"flashsale_pool_connections", map[string]string{"pool": "postgres", "state": "idle"}, 1},
		{"flashsale_pool_max_connections", map[string]string{"pool": "postgres"}, 8},
		{"flashsale_ws_connections", nil, 2},
		{"flashsale_sale_remaining_units", map[string]string{"tenant": tenant.String(), "sale": sale.String()}, 7},
		{"flashsale_sale_sold_units", map[string]string{"tenant": tenant.String(), "sale": sale.String()}, 3},
		{"flashsale_kafka_circuit_breaker_state", map[string]string{"state": "closed"}, 1},
		{"flashsale_kafka_circuit_breaker_state", map[string]string{"state": "open"}, 0},
		{"flashsale_consumer_lag_messages", map[string]string{"group": "email", "topic": "order.confirmed", "partition": "0"}, 9},
	} {
		if got := series(t, f, c.name, c.labels).GetGauge().GetValue(); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"flashsale_pool_waits_total", map[string]string{"pool": "postgres"}, 4},
		{"flashsale_pool_timeouts_total", map[string]string{"pool": "postgres"}, 1},
		{"flashsale_ws_events_sent_total", nil, 10},
		{"flashsale_ws_events_dropped_total", nil, 1},
		{"flashsale_consumer_dead_letters_total", map[string]string{"group": "email"}, 2},
	} {
		if got := series(t, f, c.name, c.labels).GetCounter().GetValue(); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// The sale ended: its series go. The breaker opened.
	live, breaker = nil, "open"
	f = scrape(t, p.Handler())
	if _, ok := f["flashsale_sale_remaining_units"]; ok {
		t.Error("an ended sale still has a remaining-stock series")
	}
	if got := series(t, f, "flashsale_kafka_circuit_breaker_state", map[string]string{"state": "open"}).GetGauge().GetValue(); got != 1 {
		t.Errorf("breaker open = %v, want 1", got)
	}
}

// BenchmarkRequest is what the metrics add to each request: a lookup of the resolved children
// and two atomic updates.
func BenchmarkRequest(b *testing.B) {
	p := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Request("placeOrder", 202, 3*time.Millisecond)
			p.Purchase("accepted")
		}
	})
}
