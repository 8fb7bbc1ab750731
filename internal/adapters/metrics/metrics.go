// Package metrics exposes Flashsale's operational figures to Prometheus.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashsale/flashsale/internal/ports"
)

// Prometheus implements ports.Metrics on its own registry.
type Prometheus struct {
	registry        *prometheus.Registry
	drift           *prometheus.GaugeVec
	outboxPending   prometheus.Gauge
	outboxOldest    prometheus.Gauge
	publishFailures *prometheus.CounterVec
	restarts        prometheus.Counter
	orderTasks      *prometheus.CounterVec
	traffic         *traffic
	overview        overviewSources
	// driftMu guards driftSales, the sales with a drift series (the checker's pace, not the
	// purchase path's).
	driftMu    sync.Mutex
	driftSales map[ports.SaleRef]bool
}

var _ ports.Metrics = (*Prometheus)(nil)

// New registers the Go runtime and process collectors and Flashsale's gauges.
func New() *Prometheus {
	r := prometheus.NewRegistry()
	p := &Prometheus{
		registry:   r,
		traffic:    newTraffic(),
		driftSales: map[ports.SaleRef]bool{},
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flashsale_inventory_drift_units",
			Help: "Units of confirmed orders Redis counts minus those PostgreSQL's inventory-sync counter holds, per sale.",
		}, []string{"tenant", "sale"}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashsale_outbox_pending_events", Help: "Events waiting in the outbox for the relay.",
		}),
		outboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashsale_outbox_oldest_event_age_seconds", Help: "Age of the oldest unpublished outbox event.",
		}),
		publishFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_kafka_publish_failures_total",
			Help: "Publishes to Kafka that failed, by kind: fatal (the producer is replaced), timeout, delivery, produce, restarting (no producer yet), circuit_open.",
		}, []string{"kind"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashsale_kafka_producer_restarts_total",
			Help: "Kafka producers built to replace one that failed fatally.",
		}),
		orderTasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_order_tasks_total",
			Help: "order:create tasks this worker ran, by result: written (the order is in PostgreSQL), retried, given_up (dead-lettered).",
		}, []string{"result"}),
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		p.drift, p.outboxPending, p.outboxOldest, p.publishFailures, p.restarts, p.orderTasks)
	r.MustRegister(p.traffic.collectors()...)
	for _, kind := range []string{"fatal", "timeout", "delivery", "produce", "restarting", "circuit_open"} {
		p.publishFailures.WithLabelValues(kind)
	}
	for _, result := range []string{"written", "retried", "given_up"} {
		p.orderTasks.WithLabelValues(result) // at zero from the start, so increase() sees the first one
	}
	return p
}

// Registry lets other adapters register their collectors.
func (p *Prometheus) Registry() *prometheus.Registry { return p.registry }

// Handler serves the registry in the Prometheus text format.
func (p *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
}

// InventoryDrift implements ports.Metrics.
func (p *Prometheus) InventoryDrift(tenantID, saleID uuid.UUID, units int) {
	p.driftMu.Lock()
	defer p.driftMu.Unlock()
	p.driftSales[ports.SaleRef{TenantID: tenantID, SaleID: saleID}] = true
	p.drift.WithLabelValues(tenantID.String(), saleID.String()).Set(float64(units))
}

// DriftChecked implements ports.Metrics: the drift series of sales no longer live go.
func (p *Prometheus) DriftChecked(live []ports.SaleRef) {
	keep := make(map[ports.SaleRef]bool, len(live))
	for _, r := range live {
		keep[r] = true
	}
	p.driftMu.Lock()
	defer p.driftMu.Unlock()
	for r := range p.driftSales {
		if !keep[r] {
			p.drift.DeleteLabelValues(r.TenantID.String(), r.SaleID.String())
			delete(p.driftSales, r)
		}
	}
}

// OutboxBacklog implements ports.Metrics.
func (p *Prometheus) OutboxBacklog(pending int, oldest time.Duration) {
	p.outboxPending.Set(float64(pending))
	p.outboxOldest.Set(oldest.Seconds())
}

// PublishFailed counts a failed publish by kind (the Kafka adapter's observer).
func (p *Prometheus) PublishFailed(kind string) { p.publishFailures.WithLabelValues(kind).Inc() }

// ProducerRestarted counts a replaced Kafka producer (the Kafka adapter's observer).
func (p *Prometheus) ProducerRestarted() { p.restarts.Inc() }

// OrderTask counts a run of an order:create task by result (the Asynq worker's observer).
func (p *Prometheus) OrderTask(result string) { p.orderTasks.WithLabelValues(result).Inc() }

// RelayState is what the outbox relay reports of itself, read at each scrape.
type RelayState struct {
	// Healthy: the relay publishes, or has nothing waiting.
	Healthy bool
	// LastPublish is when a batch last went out (zero: never).
	LastPublish time.Time
	// Published and Resent count events published, and events put back in the outbox
	// because the broker lost them.
	Published, Resent uint64
}

// WatchRelay exposes the relay's state, read from state at each scrape (once per process).
func (p *Prometheus) WatchRelay(state func() RelayState) {
	p.registry.MustRegister(relayCollector{state: state})
}

var (
	relayHealthyDesc = prometheus.NewDesc("flashsale_outbox_relay_healthy",
		"1 while the outbox relay publishes (or has nothing waiting); 0 once events have waited RELAY_UNHEALTHY_AFTER with nothing published.", nil, nil)
	relayLastPublishDesc = prometheus.NewDesc("flashsale_outbox_relay_last_publish_timestamp_seconds",
		"When the outbox relay last published a batch (Unix time; 0: not yet).", nil, nil)
	relayPublishedDesc = prometheus.NewDesc("flashsale_outbox_published_events_total",
		"Outbox events the relay published.", nil, nil)
	relayResentDesc = prometheus.NewDesc("flashsale_outbox_resent_events_total",
		"Outbox events put back to be sent again because the broker lost them (an in-memory embedded broker restarted).", nil, nil)
)

// relayCollector reads the relay's state once per scrape, so the series agree with each other.
type relayCollector struct{ state func() RelayState }

func (relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- relayHealthyDesc
	ch <- relayLastPublishDesc
	ch <- relayPublishedDesc
	ch <- relayResentDesc
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.state()
	healthy, last := 0.0, 0.0
	if s.Healthy {
		healthy = 1
	}
	if !s.LastPublish.IsZero() {
		last = float64(s.LastPublish.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(relayHealthyDesc, prometheus.GaugeValue, healthy)
	ch <- prometheus.MustNewConstMetric(relayLastPublishDesc, prometheus.GaugeValue, last)
	ch <- prometheus.MustNewConstMetric(relayPublishedDesc, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(relayResentDesc, prometheus.CounterValue, float64(s.Resent))
}
