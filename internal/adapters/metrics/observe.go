package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// traffic holds the hot-path series: the children of each label set are resolved once and kept,
// so a request costs a map read and atomic adds.
type traffic struct {
	requests    *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	purchases   *prometheus.CounterVec
	reservation prometheus.Histogram
	durable     prometheus.Histogram

	children sync.Map // requestKey -> requestChildren
}

type requestKey struct {
	operation string
	code      int
}

type requestChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func newTraffic() *traffic {
	return &traffic{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_http_requests_total",
			Help: "HTTP requests answered, by operation (the spec's operation id, or metrics, live, openapi, static, unmatched) and status code.",
		}, []string{"operation", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flashsale_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		purchases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_purchases_total",
			Help: "Answers to placeOrder by outcome: accepted, replayed, sold_out, limit, not_active, rate_limited, rejected (other 4xx), failed (5xx).",
		}, []string{"outcome"}),
		reservation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flashsale_reservation_duration_seconds",
			Help:    "Time the purchase store took to claim the key and take the stock (one Redis script), whatever it answered.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		durable: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flashsale_order_durable_delay_seconds",
			Help:    "Time from a purchase's acceptance to its order written in PostgreSQL.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
}

func (t *traffic) collectors() []prometheus.Collector {
	return []prometheus.Collector{t.requests, t.durations, t.purchases, t.reservation, t.durable}
}

// Request counts an answered HTTP request (the http adapter's observer).
func (p *Prometheus) Request(operation string, code int, d time.Duration) {
	key := requestKey{operation, code}
	c, ok := p.traffic.children.Load(key)
	if !ok {
		c, _ = p.traffic.children.LoadOrStore(key, requestChildren{
			count:    p.traffic.requests.WithLabelValues(operation, strconv.Itoa(code)),
			duration: p.traffic.durations.WithLabelValues(operation),
		})
	}
	ch := c.(requestChildren)
	ch.count.Inc()
	ch.duration.Observe(d.Seconds())
}

// Purchase counts an answer to placeOrder by outcome (the http adapter's observer).
func (p *Prometheus) Purchase(outcome string) { p.traffic.purchases.WithLabelValues(outcome).Inc() }

// ExposeOperations creates the series of each operation at zero, so rates and alerts see them
// before the first request; and the purchase outcomes.
func (p *Prometheus) ExposeOperations(operations, outcomes []string) {
	for _, op := range operations {
		p.traffic.durations.WithLabelValues(op)
	}
	for _, o := range outcomes {
		p.traffic.purchases.WithLabelValues(o)
	}
}

// ReservationTook observes one call of the purchase store.
func (p *Prometheus) ReservationTook(d time.Duration) { p.traffic.reservation.Observe(d.Seconds()) }

// OrderWritten observes the time from acceptance to the order written (the Asynq worker's
// observer).
func (p *Prometheus) OrderWritten(acceptedToDurable time.Duration) {
	p.traffic.durable.Observe(acceptedToDurable.Seconds())
}

// QueueState is an Asynq queue as the inspector sees it at a scrape.
type QueueState struct {
	Queue                                       string
	Pending, Active, Scheduled, Retry, Archived int
	// OldestPending is how long the oldest pending task has waited.
	OldestPending time.Duration
}

// PoolState is a connection pool at a scrape.
type PoolState struct {
	InUse, Idle, Max int
	// Waits counts acquisitions that had to wait for a connection; Timeouts those that gave
	// up (timed out, or canceled).
	Waits, Timeouts uint64
	WaitTime        time.Duration
}

// LiveState is this node's WebSocket hub.
type LiveState struct {
	Connections   int
	Sent, Dropped uint64
}

// SaleState is a live sale's stock.
type SaleState struct {
	TenantID, SaleID uuid.UUID
	Remaining, Sold  int
}

// ConsumerState is one consumer group member of this process.
type ConsumerState struct {
	Group string
	// DeadLettered counts the messages it parked on the DLQ topic.
	DeadLettered uint64
	Partitions   []PartitionLag
}

// PartitionLag is how far the member is behind on one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Lag       int64
}

var (
	queueTasksDesc = prometheus.NewDesc("flashsale_queue_tasks",
		"Tasks in an Asynq queue by state: pending, active, scheduled, retry, archived (the dead letters).", []string{"queue", "state"}, nil)
	queueAgeDesc = prometheus.NewDesc("flashsale_queue_oldest_pending_age_seconds",
		"How long the oldest pending task of an Asynq queue has waited.", []string{"queue"}, nil)
	queueUpDesc = prometheus.NewDesc("flashsale_queue_inspect_up",
		"1 if the queues could be read at this scrape, 0 if not.", nil, nil)
	poolConnsDesc = prometheus.NewDesc("flashsale_pool_connections",
		"Connections of a pool (postgres, redis) by state: in_use, idle.", []string{"pool", "state"}, nil)
	poolMaxDesc = prometheus.NewDesc("flashsale_pool_max_connections",
		"The most connections a pool opens (0: not known).", []string{"pool"}, nil)
	poolWaitsDesc = prometheus.NewDesc("flashsale_pool_waits_total",
		"Acquisitions that had to wait for a connection of a pool.", []string{"pool"}, nil)
	poolTimeoutsDesc = prometheus.NewDesc("flashsale_pool_timeouts_total",
		"Acquisitions that gave up waiting for a connection of a pool (timed out or canceled).", []string{"pool"}, nil)
	poolWaitTimeDesc = prometheus.NewDesc("flashsale_pool_wait_seconds_total",
		"Time spent waiting for a connection of a pool.", []string{"pool"}, nil)
	wsConnsDesc = prometheus.NewDesc("flashsale_ws_connections",
		"WebSocket clients connected to this node.", nil, nil)
	wsSentDesc = prometheus.NewDesc("flashsale_ws_events_sent_total",
		"Live events written to WebSocket clients.", nil, nil)
	wsDroppedDesc = prometheus.NewDesc("flashsale_ws_events_dropped_total",
		"Live events not delivered because the client's buffer was full (the client is dropped).", nil, nil)
	saleRemainingDesc = prometheus.NewDesc("flashsale_sale_remaining_units",
		"Units a live sale has left (only sales running now).", []string{"tenant", "sale"}, nil)
	saleSoldDesc = prometheus.NewDesc("flashsale_sale_sold_units",
		"Units a live sale has sold (only sales running now).", []string{"tenant", "sale"}, nil)
	consumerLagDesc = prometheus.NewDesc("flashsale_consumer_lag_messages",
		"Messages a consumer group has yet to process on a partition (high watermark minus the next offset).",
		[]string{"group", "topic", "partition"}, nil)
	breakerDesc = prometheus.NewDesc("flashsale_kafka_circuit_breaker_state",
		"1 for the state the circuit breaker in front of Kafka is in (closed, half-open, open), 0 for the others.", []string{"state"}, nil)
	consumerDLQDesc = prometheus.NewDesc("flashsale_consumer_dead_letters_total",
		"Messages a consumer group parked on the dead-letter topic (poison).", []string{"group"}, nil)
)

// collectorFunc is a collector with a fixed set of descriptions, read by a function at scrape.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// WatchQueues exposes the Asynq queues, read from state at each scrape (once per process).
func (p *Prometheus) WatchQueues(state func() ([]QueueState, error)) {
	var queues prometheus.Collector = collectorFunc{
		descs: []*prometheus.Desc{queueTasksDesc, queueAgeDesc, queueUpDesc},
		collect: func(ch chan<- prometheus.Metric) {
			queues, err := state()
			if err != nil {
				ch <- gauge(queueUpDesc, 0)
				return
			}
			ch <- gauge(queueUpDesc, 1)
			for _, q := range queues {
				for state, n := range map[string]int{"pending": q.Pending, "active": q.Active, "scheduled": q.Scheduled,
					"retry": q.Retry, "archived": q.Archived} {
					ch <- gauge(queueTasksDesc, float64(n), q.Queue, state)
				}
				ch <- gauge(queueAgeDesc, q.OldestPending.Seconds(), q.Queue)
			}
		},
	}
	p.registry.MustRegister(queues)
	p.overview.queues.Store(&queues)
}

// WatchPools exposes connection pools by name, read at each scrape (once per process).
func (p *Prometheus) WatchPools(pools map[string]func() PoolState) {
	p.registry.MustRegister(collectorFunc{
		descs: []*prometheus.Desc{poolConnsDesc, poolMaxDesc, poolWaitsDesc, poolTimeoutsDesc, poolWaitTimeDesc},
		collect: func(ch chan<- prometheus.Metric) {
			for name, state := range pools {
				s := state()
				ch <- gauge(poolConnsDesc, float64(s.InUse), name, "in_use")
				ch <- gauge(poolConnsDesc, float64(s.Idle), name, "idle")
				ch <- gauge(poolMaxDesc, float64(s.Max), name)
				ch <- counter(poolWaitsDesc, float64(s.Waits), name)
				ch <- counter(poolTimeoutsDesc, float64(s.Timeouts), name)
				ch <- counter(poolWaitTimeDesc, s.WaitTime.Seconds(), name)
			}
		},
	})
}

// WatchLive exposes this node's WebSocket hub, read at each scrape (once per process).
func (p *Prometheus) WatchLive(state func() LiveState) {
	p.registry.MustRegister(collectorFunc{
		descs: []*prometheus.Desc{wsConnsDesc, wsSentDesc, wsDroppedDesc},
		collect: func(ch chan<- prometheus.Metric) {
			s := state()
			ch <- gauge(wsConnsDesc, float64(s.Connections))
			ch <- counter(wsSentDesc, float64(s.Sent))
			ch <- counter(wsDroppedDesc, float64(s.Dropped))
		},
	})
}

// WatchSales exposes the stock of the sales running now, read at each scrape (once per
// process): a sale that ended is no longer listed, so its series go.
func (p *Prometheus) WatchSales(state func() []SaleState) {
	p.registry.MustRegister(collectorFunc{
		descs: []*prometheus.Desc{saleRemainingDesc, saleSoldDesc},
		collect: func(ch chan<- prometheus.Metric) {
			for _, s := range state() {
				ch <- gauge(saleRemainingDesc, float64(s.Remaining), s.TenantID.String(), s.SaleID.String())
				ch <- gauge(saleSoldDesc, float64(s.Sold), s.TenantID.String(), s.SaleID.String())
			}
		},
	})
}

// WatchBreaker exposes the state of the circuit breaker in front of Kafka (closed, half-open,
// open), read at each scrape (once per process): the series of the current state is 1.
func (p *Prometheus) WatchBreaker(state func() string) {
	p.registry.MustRegister(collectorFunc{
		descs: []*prometheus.Desc{breakerDesc},
		collect: func(ch chan<- prometheus.Metric) {
			now := state()
			for _, s := range []string{"closed", "half-open", "open"} {
				v := 0.0
				if s == now {
					v = 1
				}
				ch <- gauge(breakerDesc, v, s)
			}
		},
	})
}

// WatchConsumers exposes the consumers' lag and dead letters, read at each scrape (once per
// process).
func (p *Prometheus) WatchConsumers(state func() []ConsumerState) {
	p.registry.MustRegister(collectorFunc{
		descs: []*prometheus.Desc{consumerLagDesc, consumerDLQDesc},
		collect: func(ch chan<- prometheus.Metric) {
			for _, c := range state() {
				ch <- counter(consumerDLQDesc, float64(c.DeadLettered), c.Group)
				for _, l := range c.Partitions {
					ch <- gauge(consumerLagDesc, float64(l.Lag), c.Group, l.Topic, strconv.Itoa(int(l.Partition)))
				}
			}
		},
	})
}
