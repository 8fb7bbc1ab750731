package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/spans"
)

// Message is what a handler gets: the value and where it came from.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// Handler applies one message. An error wrapping domain.ErrPermanent (a poison message) is
// retried a few times and then dead-lettered; any other error is an outage of something the
// handler needs and is retried, with backoff, until it succeeds.
type Handler func(ctx context.Context, m Message) error

// ConsumerConfig configures one consumer group.
type ConsumerConfig struct {
	Brokers string
	Group   string
	Topic   string
	// DLQTopic receives the messages that failed PoisonAttempts times.
	DLQTopic       string
	PoisonAttempts int
	// Backoff is the first wait after a failure; it doubles up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// WatchEvery is how often the broker's cluster id is checked (default 1 s; see Run).
	WatchEvery time.Duration
}

// Consumer runs a handler over a topic as one consumer group, at least once: an offset is
// stored only after its message was applied (or dead-lettered), and committed from there.
type Consumer struct {
	cfg     ConsumerConfig
	c       *ckafka.Consumer
	dlq     *Producer
	handler Handler
	log     *slog.Logger
	// rewindUntil: partitions assigned before then start from the beginning (see rewind).
	rewindUntil time.Time
	// deadLettered counts the messages parked on the DLQ topic.
	deadLettered atomic.Uint64
}

// PartitionLag is how far the group is behind on one partition of its topic.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Lag is the high watermark minus the consumer's position: messages not yet processed.
	Lag int64
}

// Group is the consumer group's id.
func (c *Consumer) Group() string { return c.cfg.Group }

// DeadLettered is how many messages this consumer parked on the DLQ topic since start.
func (c *Consumer) DeadLettered() uint64 { return c.deadLettered.Load() }

// Lag reads, without asking the broker, the lag of each partition assigned to this member:
// the high watermark of the last fetch minus the position. A partition not read yet is left out.
func (c *Consumer) Lag() []PartitionLag {
	parts, err := c.c.Assignment()
	if err != nil || len(parts) == 0 {
		return nil
	}
	pos, err := c.c.Position(parts)
	if err != nil {
		return nil
	}
	var out []PartitionLag
	for _, p := range pos {
		if p.Topic == nil || p.Offset < 0 {
			continue
		}
		_, high, err := c.c.GetWatermarkOffsets(*p.Topic, p.Partition)
		if err != nil || high < 0 {
			continue
		}
		out = append(out, PartitionLag{Topic: *p.Topic, Partition: p.Partition, Lag: max(high-int64(p.Offset), 0)})
	}
	return out
}

// NewConsumer joins the group; Run consumes.
func NewConsumer(cfg ConsumerConfig, dlq *Producer, h Handler, log *slog.Logger) (*Consumer, error) {
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{
		"bootstrap.servers":        cfg.Brokers,
		"group.id":                 cfg.Group,
		"client.id":                cfg.Group,
		"auto.offset.reset":        "earliest",
		"enable.auto.commit":       true,
		"auto.commit.interval.ms":  1000,
		"enable.auto.offset.store": false,
		"session.timeout.ms":       10000,
		"heartbeat.interval.ms":    1000,
		"reconnect.backoff.max.ms": reconnectBackoffMaxMs,
		"log_level":                4,
		"enable.metrics.push":      false,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka consumer %s: %w", cfg.Group, err)
	}
	cons := &Consumer{cfg: cfg, c: c, dlq: dlq, handler: h, log: log.With("consumer", cfg.Group)}
	if err := c.Subscribe(cfg.Topic, cons.rebalanced); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("kafka consumer %s: subscribe %s: %w", cfg.Group, cfg.Topic, err)
	}
	return cons, nil
}

// rebalanced starts the partitions assigned shortly after a rewind from their beginning: the
// group's committed offsets on a broker that lost its log are positions in the old one (this
// consumer may even have committed them there itself before noticing). Any other assignment is
// left to the library (committed offsets, else auto.offset.reset). Called from Poll.
func (c *Consumer) rebalanced(cons *ckafka.Consumer, ev ckafka.Event) error {
	a, ok := ev.(ckafka.AssignedPartitions)
	if !ok || !time.Now().Before(c.rewindUntil) {
		return nil
	}
	for i := range a.Partitions {
		a.Partitions[i].Offset = ckafka.OffsetBeginning
	}
	return cons.Assign(a.Partitions)
}

// Run consumes until ctx ends, then commits what was stored and leaves the group.
//
// It also watches the broker's cluster id. A broker that lost its log (the embedded broker
// restarted in memory) comes back under a new one, and the consumer's positions then point into
// a new, shorter log that the outbox relay fills again: a position the new log has already
// passed would skip the events re-sent before it. So on a new cluster id the consumer reads its
// partitions again from their start; the handlers are idempotent (processed events).
func (c *Consumer) Run(ctx context.Context) error {
	admin, err := ckafka.NewAdminClientFromConsumer(c.c)
	if err != nil {
		_ = c.c.Close()
		return fmt.Errorf("kafka consumer %s: admin client: %w", c.cfg.Group, err)
	}
	watcher := &ClusterWatcher{admin: admin, timeout: time.Second}
	ctx, cancel := context.WithCancel(ctx)
	lost := make(chan string, 1)
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
		admin.Close()
		if err := c.c.Close(); err != nil {
			c.log.Warn("kafka consumer close", "err", err)
		}
	}()
	// The log the positions are in must be known before a message is applied: a watch that
	// first heard the broker after it lost its log would take the new log for the first one.
	known, err := c.incarnation(ctx, watcher)
	if err != nil {
		close(done)
		return nil // stopped before the broker answered
	}
	go func() { defer close(done); c.watch(ctx, watcher, known, lost) }()
	for ctx.Err() == nil {
		select {
		case id := <-lost:
			c.rewind(id)
		default:
		}
		ev := c.c.Poll(200)
		switch e := ev.(type) {
		case nil:
		case *ckafka.Message:
			if err := c.process(ctx, e); err != nil {
				return nil // ctx ended mid-message: it stays unstored and is redelivered
			}
		case ckafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("kafka consumer %s: %w", c.cfg.Group, e)
			}
			c.log.Debug("kafka consumer error", "err", e)
		}
	}
	return nil
}

// incarnation is the broker's cluster id, asked until it answers (or ctx ends).
func (c *Consumer) incarnation(ctx context.Context, w *ClusterWatcher) (string, error) {
	for {
		id, err := w.Incarnation(ctx)
		if err == nil {
			return id, nil
		}
		c.log.Debug("kafka consumer: the broker's cluster id is not known yet", "err", err)
		if err := sleep(ctx, c.watchEvery()); err != nil {
			return "", err
		}
	}
}

func (c *Consumer) watchEvery() time.Duration {
	if c.cfg.WatchEvery <= 0 {
		return time.Second
	}
	return c.cfg.WatchEvery
}

// watch reports on lost each new cluster id the broker answers with after known, the one the
// consumer's positions are in.
func (c *Consumer) watch(ctx context.Context, w *ClusterWatcher, known string, lost chan<- string) {
	for sleep(ctx, c.watchEvery()) == nil {
		id, err := w.Incarnation(ctx)
		switch {
		case err != nil || id == known:
		default:
			known = id
			select {
			case lost <- id:
			case <-ctx.Done():
			}
		}
	}
}

// rewind reads every assigned partition again from its start, and those assigned in the next
// half minute (the group rebalances on the new broker).
func (c *Consumer) rewind(cluster string) {
	c.rewindUntil = time.Now().Add(30 * time.Second)
	parts, err := c.c.Assignment()
	if err != nil {
		c.log.Warn("broker lost its log, but the assignment is unknown; positions kept", "err", err)
		return
	}
	for _, tp := range parts {
		tp.Offset = ckafka.OffsetBeginning
		if err := c.c.Seek(tp, 1000); err != nil {
			c.log.Warn("cannot rewind a partition", "partition", tp.Partition, "err", err)
		}
	}
	c.log.Warn("the broker lost its log (a new cluster id): every partition read again from its start; events already applied are skipped",
		"cluster", cluster, "partitions", len(parts))
}

// process applies one message until it succeeds, or dead-letters it once it proved poison.
func (c *Consumer) process(ctx context.Context, km *ckafka.Message) (err error) {
	m := Message{Topic: *km.TopicPartition.Topic, Partition: km.TopicPartition.Partition,
		Offset: int64(km.TopicPartition.Offset), Key: km.Key, Value: km.Value}
	// The message is applied in the trace its producer sent (the purchase's).
	ctx, span := tracer().Start(spans.WithTraceParent(ctx, headerValue(km.Headers, traceParentHeader)),
		"kafka.consume "+c.cfg.Group, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("messaging.destination.name", m.Topic), attribute.String("messaging.consumer.group.name", c.cfg.Group),
			attribute.Int64("messaging.kafka.offset", m.Offset)))
	defer func() { spans.End(span, err) }()
	backoff := c.cfg.Backoff
	poison := 0
	for attempt := 1; ; attempt++ {
		err := c.apply(ctx, m)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, domain.ErrPermanent) {
			if poison++; poison >= c.cfg.PoisonAttempts {
				if err := c.deadLetter(ctx, km, err, attempt); err != nil {
					return err
				}
				break
			}
		}
		c.log.WarnContext(ctx, "event not applied; retrying", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
			"attempt", attempt, "poison", errors.Is(err, domain.ErrPermanent), "retry_in", backoff, "err", err)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
	if _, err := c.c.StoreMessage(km); err != nil {
		c.log.WarnContext(ctx, "offset not stored; the message will be redelivered", "offset", m.Offset, "err", err)
	}
	return nil
}

// apply runs the handler, turning a panic into a poison error.
func (c *Consumer) apply(ctx context.Context, m Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panicked: %v: %w", v, domain.ErrPermanent)
		}
	}()
	return c.handler(ctx, m)
}

// deadLetter parks the message, unchanged, on the DLQ topic with headers saying why; it retries
// until the DLQ has it, so a message is never dropped.
func (c *Consumer) deadLetter(ctx context.Context, km *ckafka.Message, cause error, attempts int) error {
	topic := c.cfg.DLQTopic
	msg := &ckafka.Message{
		TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
		Key:            km.Key,
		Value:          km.Value,
		Headers: append(km.Headers,
			ckafka.Header{Key: "dlq-consumer", Value: []byte(c.cfg.Group)},
			ckafka.Header{Key: "dlq-error", Value: []byte(cause.Error())},
			ckafka.Header{Key: "dlq-attempts", Value: []byte(strconv.Itoa(attempts))},
			ckafka.Header{Key: "dlq-source-topic", Value: []byte(*km.TopicPartition.Topic)},
			ckafka.Header{Key: "dlq-source-partition", Value: []byte(strconv.Itoa(int(km.TopicPartition.Partition)))},
			ckafka.Header{Key: "dlq-source-offset", Value: []byte(km.TopicPartition.Offset.String())},
		),
	}
	backoff := c.cfg.Backoff
	for {
		err := c.dlq.send(ctx, []*ckafka.Message{msg})
		if err == nil {
			c.deadLettered.Add(1)
			c.log.ErrorContext(ctx, "poison message dead-lettered", "dlq", topic, "partition", km.TopicPartition.Partition,
				"offset", km.TopicPartition.Offset, "attempts", attempts, "err", cause)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.WarnContext(ctx, "dead-letter topic unavailable; retrying", "err", err)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

// headerValue is the value of a message's header key ("" if absent).
func headerValue(headers []ckafka.Header, key string) string {
	for _, h := range headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
