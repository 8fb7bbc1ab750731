package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/domain"
)

var testTopics = []kafka.TopicSpec{{Name: "events", Partitions: 3}, {Name: "events.dlq", Partitions: 1}}

func newBroker(t *testing.T) *kafka.Embedded {
	t.Helper()
	b, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Topics: testTopics}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newProducer(t *testing.T, brokers string) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, ClientID: "test", DeliveryTimeout: 10 * time.Second}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	return p
}

func event(i int) domain.Event {
	return domain.Event{ID: uuid.New(), Topic: "events", Key: fmt.Sprint(i), Type: "test", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), CreatedAt: time.Now()}
}

// TestPublishConsumeAndDeadLetter: published events reach a consumer group; a poison message
// is dead-lettered with its headers and the partition moves on past it.
func TestPublishConsumeAndDeadLetter(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	p := newProducer(t, b.Addr())
	var events []domain.Event
	for i := range 20 {
		events = append(events, event(i))
	}
	events[7].Payload = []byte("poison")
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatalf("publish: %v", err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{Brokers: b.Addr(), Group: "g1", Topic: "events", DLQTopic: "events.dlq",
		PoisonAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, p,
		func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(m.Value)]++
			if string(m.Value) == "poison" {
				return fmt.Errorf("cannot decode: %w", domain.ErrPermanent)
			}
			return nil
		}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of 20 distinct messages", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if seen["poison"] != 3 {
		t.Fatalf("poison tried %d times, want 3", seen["poison"])
	}

	dlq, err := ckafka.NewConsumer(&ckafka.ConfigMap{"bootstrap.servers": b.Addr(), "group.id": "dlq-reader", "auto.offset.reset": "earliest"})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	if err := dlq.Subscribe("events.dlq", nil); err != nil {
		t.Fatal(err)
	}
	m, err := dlq.ReadMessage(20 * time.Second)
	if err != nil {
		t.Fatalf("read dlq: %v", err)
	}
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	if string(m.Value) != "poison" || headers["dlq-consumer"] != "g1" || headers["dlq-attempts"] != "3" || headers["dlq-source-topic"] != "events" {
		t.Fatalf("dlq message %q headers %v", m.Value, headers)
	}
}
