package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flashsale/flashsale/internal/ports"
)

// overviewSources are the collectors the control room reads besides the traffic series: set
// by the roles of the process as they start.
type overviewSources struct {
	orderQueue atomic.Pointer[string]
	queues     atomic.Pointer[prometheus.Collector]
	worker     atomic.Bool
}

// ControlOrderQueue names the order queue among those WatchQueues reads.
func (p *Prometheus) ControlOrderQueue(name string) { p.overview.orderQueue.Store(&name) }

// WorkerRuns says this process runs the order worker, which measures the time to durable.
func (p *Prometheus) WorkerRuns() { p.overview.worker.Store(true) }

// Overview implements ports.Metrics: the series the control room draws, read from the same
// collectors /metrics exports (only those: the scrape-time readers of pools, sales and
// consumers are left alone).
func (p *Prometheus) Overview(_ context.Context, tenantID uuid.UUID) (ports.Overview, error) {
	out := ports.Overview{Purchases: map[string]uint64{}, Drift: map[uuid.UUID]int{}, DurableMeasured: p.overview.worker.Load()}
	for _, m := range collect(p.traffic.purchases) {
		out.Purchases[label(m, "outcome")] = uint64(m.GetCounter().GetValue())
	}
	if h, err := p.traffic.durations.GetMetricWithLabelValues("placeOrder"); err == nil {
		out.PurchaseLatency = histogramOf(h.(prometheus.Collector))
	}
	out.Durable = histogramOf(p.traffic.durable)
	tenant := tenantID.String()
	for _, m := range collect(p.drift) {
		if label(m, "tenant") != tenant {
			continue
		}
		if id, err := uuid.Parse(label(m, "sale")); err == nil {
			out.Drift[id] = int(m.GetGauge().GetValue())
		}
	}
	out.Queue = p.orderQueue()
	return out, nil
}

// orderQueue reads the order queue's gauges (one read of the queues, as a scrape does).
func (p *Prometheus) orderQueue() ports.QueueDepth {
	name, queues := p.overview.orderQueue.Load(), p.overview.queues.Load()
	if name == nil || queues == nil {
		return ports.QueueDepth{}
	}
	q := ports.QueueDepth{Name: *name}
	ch := make(chan prometheus.Metric, 64)
	go func() { (*queues).Collect(ch); close(ch) }()
	for metric := range ch {
		var m dto.Metric
		if metric.Write(&m) != nil {
			continue
		}
		switch metric.Desc() {
		case queueUpDesc:
			q.Measured = m.GetGauge().GetValue() == 1
		case queueAgeDesc:
			if label(&m, "queue") == q.Name {
				q.OldestPending = time.Duration(m.GetGauge().GetValue() * float64(time.Second))
			}
		case queueTasksDesc:
			if label(&m, "queue") != q.Name {
				continue
			}
			n := int(m.GetGauge().GetValue())
			switch label(&m, "state") {
			case "pending":
				q.Pending = n
			case "active":
				q.Active = n
			case "scheduled":
				q.Scheduled = n
			case "retry":
				q.Retry = n
			case "archived":
				q.Archived = n
			}
		}
	}
	return q
}

func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for metric := range ch {
		var m dto.Metric
		if metric.Write(&m) == nil {
			out = append(out, &m)
		}
	}
	return out
}

func histogramOf(c prometheus.Collector) ports.Histogram {
	var h ports.Histogram
	for _, m := range collect(c) {
		dh := m.GetHistogram()
		h.Count, h.Sum = dh.GetSampleCount(), dh.GetSampleSum()
		for _, b := range dh.GetBucket() {
			h.Bounds = append(h.Bounds, b.GetUpperBound())
			h.Buckets = append(h.Buckets, b.GetCumulativeCount())
		}
	}
	return h
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
