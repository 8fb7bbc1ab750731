package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/flashsale/flashsale/internal/domain"
)

// ProducerConfig configures the producer.
type ProducerConfig struct {
	Brokers  string
	ClientID string
	// DeliveryTimeout bounds how long a message may wait for the broker's acknowledgement
	// before its delivery fails (librdkafka message.timeout.ms).
	DeliveryTimeout time.Duration
}

// Producer is one long-lived idempotent producer (acks=all).
type Producer struct {
	p    *ckafka.Producer
	log  *slog.Logger
	done chan struct{}
}

// NewProducer connects lazily; Publish reports whether brokers acknowledged.
func NewProducer(cfg ProducerConfig, log *slog.Logger) (*Producer, error) {
	p, err := ckafka.NewProducer(&ckafka.ConfigMap{
		"bootstrap.servers":   cfg.Brokers,
		"client.id":           cfg.ClientID,
		"enable.idempotence":  true,
		"acks":                "all",
		"linger.ms":           5,
		"message.timeout.ms":  int(cfg.DeliveryTimeout.Milliseconds()),
		"socket.timeout.ms":   int(min(cfg.DeliveryTimeout, 60*time.Second).Milliseconds()),
		"log_level":           4, // warnings and worse; librdkafka writes its logs to stderr
		"enable.metrics.push": false,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	pr := &Producer{p: p, log: log, done: make(chan struct{})}
	go pr.drain()
	return pr, nil
}

// drain reads the producer's event channel: without a reader librdkafka's queue fills and
// Flush hangs. Deliveries go to per-call channels; what arrives here is errors and logs.
func (p *Producer) drain() {
	defer close(p.done)
	for ev := range p.p.Events() {
		switch e := ev.(type) {
		case ckafka.Error:
			if e.IsFatal() {
				p.log.Error("kafka producer fatal error", "err", e)
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
func (p *Producer) Publish(ctx context.Context, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	reports := make(chan ckafka.Event, len(events))
	for _, ev := range events {
		topic := ev.Topic
		msg := &ckafka.Message{
			TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: ckafka.PartitionAny},
			Key:            []byte(ev.Key),
			Value:          ev.Payload,
			Timestamp:      ev.CreatedAt,
			Headers: []ckafka.Header{
				{Key: "event-id", Value: []byte(ev.ID.String())},
				{Key: "event-type", Value: []byte(ev.Type)},
				{Key: "event-version", Value: []byte("1")},
			},
		}
		if err := p.produce(ctx, msg, reports); err != nil {
			return err
		}
	}
	return awaitDeliveries(ctx, reports, len(events))
}

// produce enqueues one message, waiting while librdkafka's local queue is full.
func (p *Producer) produce(ctx context.Context, msg *ckafka.Message, reports chan ckafka.Event) error {
	for {
		err := p.p.Produce(msg, reports)
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

func awaitDeliveries(ctx context.Context, reports chan ckafka.Event, n int) error {
	var failed []string
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
			if m.TopicPartition.Error != nil {
				failed = append(failed, m.TopicPartition.Error.Error())
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("kafka delivery: %d of %d failed: %s", len(failed), n, strings.Join(dedupe(failed), "; "))
	}
	return nil
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

// Close delivers what is queued (up to timeout) and closes the producer.
func (p *Producer) Close(timeout time.Duration) {
	if left := p.p.Flush(int(timeout.Milliseconds())); left > 0 {
		p.log.Warn("kafka producer closed with undelivered messages; the outbox still has them", "count", left)
	}
	p.p.Close()
	<-p.done
}
