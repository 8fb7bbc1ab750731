package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/spans"
)

// Kinds of failed publishes, as Observer.PublishFailed counts them.
const (
	// FailureFatal: the producer hit a fatal error (an idempotent producer whose sequence the
	// broker no longer knows, after a broker restart); it is replaced.
	FailureFatal = "fatal"
	// FailureTimeout: the brokers did not acknowledge within the delivery timeout.
	FailureTimeout = "timeout"
	// FailureDelivery: the brokers refused a message.
	FailureDelivery = "delivery"
	// FailureProduce: the message could not even be queued locally.
	FailureProduce = "produce"
	// FailureRestarting: no producer, a replacement is waiting for its backoff.
	FailureRestarting = "restarting"
	// FailureCircuitOpen: the circuit breaker refused the call without trying.
	FailureCircuitOpen = "circuit_open"
)

// Observer is told what operators watch of publishing (the metrics adapter implements it).
type Observer interface {
	// PublishFailed counts one failed publish by kind (the Failure* constants).
	PublishFailed(kind string)
	// ProducerRestarted counts a producer built to replace one that failed fatally.
	ProducerRestarted()
}

// Backoff between replacements of a producer that keeps failing fatally; the first
// replacement after a success is immediate.
const (
	defaultRestartBackoff    = 500 * time.Millisecond
	defaultRestartMaxBackoff = 30 * time.Second
)

var errProducerClosed = errors.New("kafka producer: closed")

// reconnectBackoffMaxMs caps librdkafka's wait between reconnection attempts to a broker.
const reconnectBackoffMaxMs = 1000

// ProducerConfig configures the producer.
type ProducerConfig struct {
	Brokers  string
	ClientID string
	// DeliveryTimeout bounds how long a message may wait for the broker's acknowledgement
	// before its delivery fails (librdkafka message.timeout.ms).
	DeliveryTimeout time.Duration
	// RestartBackoff is the wait before building a producer again when its predecessor also
	// failed fatally; it doubles up to RestartMaxBackoff (defaults 500ms and 30s).
	RestartBackoff, RestartMaxBackoff time.Duration
	// Observer, if set, counts failed publishes and replaced producers.
	Observer Observer
}

// Producer is one long-lived idempotent producer (acks=all). A librdkafka producer that hits a
// fatal error refuses every message from then on, so Producer replaces it: the publish that
// saw the error fails (its events stay in the outbox), and the next one runs on a new producer.
type Producer struct {
	cfg ProducerConfig
	log *slog.Logger

	mu      sync.Mutex
	cur     *producerClient              // nil between a fatal error and its replacement
	live    map[*producerClient]struct{} // built and not yet destroyed
	closed  bool
	wait    time.Duration // before the next replacement: 0 after a success
	retryAt time.Time
}

// producerClient is one librdkafka producer and the goroutine reading its events. A retired
// producer is destroyed once no send uses it any more: librdkafka must not be called on a
// destroyed handle.
type producerClient struct {
	p       *ckafka.Producer
	done    chan struct{} // closed when the producer is destroyed and its events drained
	users   int           // sends using it (under Producer.mu)
	retired bool
	flush   time.Duration // how long to deliver what is queued when it is destroyed
}

// NewProducer connects lazily; Publish reports whether brokers acknowledged.
func NewProducer(cfg ProducerConfig, log *slog.Logger) (*Producer, error) {
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = defaultRestartBackoff
	}
	if cfg.RestartMaxBackoff <= 0 {
		cfg.RestartMaxBackoff = defaultRestartMaxBackoff
	}
	cfg.RestartMaxBackoff = max(cfg.RestartMaxBackoff, cfg.RestartBackoff)
	p := &Producer{cfg: cfg, log: log, live: map[*producerClient]struct{}{}}
	c, err := p.build()
	if err != nil {
		return nil, err
	}
	p.cur = c
	p.live[c] = struct{}{}
	return p, nil
}

func (p *Producer) build() (*producerClient, error) {
	kp, err := ckafka.NewProducer(&ckafka.ConfigMap{
		"bootstrap.servers":  p.cfg.Brokers,
		"client.id":          p.cfg.ClientID,
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"message.timeout.ms": int(p.cfg.DeliveryTimeout.Milliseconds()),
		"socket.timeout.ms":  int(min(p.cfg.DeliveryTimeout, 60*time.Second).Milliseconds()),
		// A broker back from a restart is reconnected to within a second (librdkafka's
		// default backoff grows to 10 s, and the outbox waits that long).
		"reconnect.backoff.max.ms": reconnectBackoffMaxMs,
		"log_level":                4, // warnings and worse; librdkafka writes its logs to stderr
		"enable.metrics.push":      false,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	c := &producerClient{p: kp, done: make(chan struct{})}
	go p.drain(c)
	return c, nil
}

// drain reads a producer's event channel: without a reader librdkafka's queue fills and Flush
// hangs. Deliveries go to per-call channels; what arrives here is errors and logs. A fatal error
// retires the producer at once, even if nothing is being published.
func (p *Producer) drain(c *producerClient) {
	defer close(c.done)
	for ev := range c.p.Events() {
		switch e := ev.(type) {
		case ckafka.Error:
			if e.IsFatal() {
				p.retire(c, e)
			} else {
				p.log.Debug("kafka producer error", "err", e)
			}
		case *ckafka.Message:
			if e.TopicPartition.Error != nil {
				p.log.Warn("kafka delivery failed", "topic", *e.TopicPartition.Topic, "err", e.TopicPartition.Error)
			}
		}
	}
}

// Publish sends the events and waits until every one is acknowledged by the brokers (acks=all)
// or has failed. It returns nil only if all were delivered.
//
// Each event is published in a span of its own trace (the one the outbox stored with it), and
// the message carries that span as its W3C traceparent header for the consumers.
func (p *Producer) Publish(ctx context.Context, events []domain.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	msgs := make([]*ckafka.Message, len(events))
	published := make([]trace.Span, len(events))
	defer func() {
		for _, span := range published {
			spans.End(span, err)
		}
	}()
	for i, ev := range events {
		topic := ev.Topic
		// The batch's context keeps its deadline; the span's parent is the event's trace.
		sctx, span := tracer().Start(trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(spans.WithTraceParent(ctx, ev.TraceParent))),
			"kafka.publish "+ev.Topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
				attribute.String("messaging.destination.name", ev.Topic), attribute.String("flashsale.event_id", ev.ID.String())))
		published[i] = span
		headers := []ckafka.Header{
			{Key: "event-id", Value: []byte(ev.ID.String())},
			{Key: "event-type", Value: []byte(ev.Type)},
			{Key: "event-version", Value: []byte("1")},
		}
		if tp := spans.TraceParent(sctx); tp != "" {
			headers = append(headers, ckafka.Header{Key: traceParentHeader, Value: []byte(tp)})
		}
		msgs[i] = &ckafka.Message{
			TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
			Key:            []byte(ev.Key),
			Value:          ev.Payload,
			Timestamp:      ev.CreatedAt,
			Headers:        headers,
		}
	}
	return p.send(ctx, msgs)
}

// traceParentHeader is the Kafka header of a message's W3C trace context.
const traceParentHeader = "traceparent"

// send produces the messages on the current producer and waits for every acknowledgement.
func (p *Producer) send(ctx context.Context, msgs []*ckafka.Message) error {
	c, err := p.client()
	if err != nil {
		if !errors.Is(err, errProducerClosed) {
			p.observe(FailureRestarting)
		}
		return err
	}
	defer p.release(c)
	reports := make(chan ckafka.Event, len(msgs))
	for _, msg := range msgs {
		if err := produce(ctx, c.p, msg, reports); err != nil {
			return p.failed(ctx, c, err, FailureProduce)
		}
	}
	if err := awaitDeliveries(ctx, reports, len(msgs)); err != nil {
		kind := FailureDelivery
		if kerr := (ckafka.Error{}); errors.As(err, &kerr) && kerr.Code() == ckafka.ErrMsgTimedOut {
			kind = FailureTimeout
		}
		return p.failed(ctx, c, err, kind)
	}
	p.mu.Lock()
	p.wait = 0
	p.mu.Unlock()
	return nil
}

// failed classifies a failed send; a producer that failed fatally is replaced.
func (p *Producer) failed(ctx context.Context, c *producerClient, err error, kind string) error {
	if fatal := c.p.GetFatalError(); fatal != nil {
		p.retire(c, fatal)
		p.observe(FailureFatal)
		return fmt.Errorf("%w (fatal producer error, replacing the producer: %v)", err, fatal)
	}
	if ctx.Err() == nil {
		p.observe(kind)
	}
	return err
}

func (p *Producer) observe(kind string) {
	if p.cfg.Observer != nil {
		p.cfg.Observer.PublishFailed(kind)
	}
}

// client is the current producer, or a new one replacing one that failed fatally once the
// backoff allows.
func (p *Producer) client() (*producerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, errProducerClosed
	case p.cur != nil:
		p.cur.users++
		return p.cur, nil
	}
	if wait := time.Until(p.retryAt); wait > 0 {
		return nil, fmt.Errorf("kafka producer: replacing a producer that failed fatally, next attempt in %s",
			wait.Round(time.Millisecond))
	}
	c, err := p.build()
	if err != nil {
		p.backOff()
		return nil, err
	}
	p.cur, p.live[c] = c, struct{}{}
	c.users++
	p.log.Info("kafka producer replaced")
	if p.cfg.Observer != nil {
		p.cfg.Observer.ProducerRestarted()
	}
	return c, nil
}

// retire takes a producer that failed fatally out of use and closes it in the background; the
// next send builds its replacement. Only the first report of its failure counts.
func (p *Producer) retire(c *producerClient, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != c {
		return
	}
	p.cur = nil
	p.backOff()
	p.log.Error("kafka producer failed fatally; replacing it", "err", cause,
		"replace_in", time.Until(p.retryAt).Round(time.Millisecond))
	p.retireLocked(c, 0)
}

// release ends a send's use of c.
func (p *Producer) release(c *producerClient) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.users--
	if c.retired && c.users == 0 {
		go p.destroy(c)
	}
}

// retireLocked marks c for destruction, at once if no send uses it. Called with mu held.
func (p *Producer) retireLocked(c *producerClient, flush time.Duration) {
	c.retired, c.flush = true, flush
	if c.users == 0 {
		go p.destroy(c)
	}
}

// destroy flushes for up to c.flush (a producer that failed fatally has nothing to flush: its
// messages are purged), destroys the producer and waits for its event reader to end.
func (p *Producer) destroy(c *producerClient) {
	if c.flush > 0 {
		if left := c.p.Flush(int(c.flush.Milliseconds())); left > 0 {
			p.log.Warn("kafka producer closed with undelivered messages; the outbox still has them", "count", left)
		}
	} else {
		_ = c.p.Purge(ckafka.PurgeQueue | ckafka.PurgeInFlight | ckafka.PurgeNonBlocking)
	}
	c.p.Close()
	<-c.done
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
}

// backOff sets when the next producer may be built: at once after a success, then after a
// wait doubling from RestartBackoff to RestartMaxBackoff. Called with mu held.
func (p *Producer) backOff() {
	p.retryAt = time.Now().Add(p.wait)
	p.wait = min(max(2*p.wait, p.cfg.RestartBackoff), p.cfg.RestartMaxBackoff)
}

// produce enqueues one message, waiting while librdkafka's local queue is full.
func produce(ctx context.Context, kp *ckafka.Producer, msg *ckafka.Message, reports chan ckafka.Event) error {
	for {
		err := kp.Produce(msg, reports)
		var kerr ckafka.Error
		if err == nil {
			return nil
		}
		if !errors.As(err, &kerr) || kerr.Code() != ckafka.ErrQueueFull {
			return fmt.Errorf("kafka produce: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// awaitDeliveries waits for n delivery reports; the error wraps the first failure's
// ckafka.Error (its code tells a timeout from a refusal).
func awaitDeliveries(ctx context.Context, reports chan ckafka.Event, n int) error {
	var failed []string
	var first error
	for range n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka delivery: %w", ctx.Err())
		case ev := <-reports:
			m, ok := ev.(*ckafka.Message)
			if !ok {
				failed = append(failed, fmt.Sprint(ev))
				continue
			}
			if err := m.TopicPartition.Error; err != nil {
				failed = append(failed, err.Error())
				if first == nil {
					first = err
				}
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	msg := fmt.Sprintf("kafka delivery: %d of %d failed: %s", len(failed), n, strings.Join(dedupe(failed), "; "))
	if first != nil {
		return fmt.Errorf("%s: %w", msg, first)
	}
	return errors.New(msg)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Close delivers what is queued (up to timeout), closes the producer and waits until every
// producer it built is destroyed.
func (p *Producer) Close(timeout time.Duration) {
	p.mu.Lock()
	p.closed = true
	if c := p.cur; c != nil {
		p.cur = nil
		p.retireLocked(c, timeout)
	}
	live := make([]*producerClient, 0, len(p.live))
	for c := range p.live {
		live = append(live, c)
	}
	p.mu.Unlock()
	for _, c := range live {
		<-c.done
	}
}
