package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
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
	if n := c.DeadLettered(); n != 1 {
		t.Errorf("DeadLettered() = %d, want 1", n)
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

// TestConsumerLag: while the handler is stuck, the partition it is on shows the messages behind
// the one in hand; once it goes on, every partition it read shows none.
func TestConsumerLag(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	p := newProducer(t, b.Addr())
	var events []domain.Event
	for range 30 {
		e := event(0) // one key: one partition
		events = append(events, e)
	}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatalf("publish: %v", err)
	}
	release := make(chan struct{})
	var handled atomic.Int64
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{Brokers: b.Addr(), Group: "g-lag", Topic: "events", DLQTopic: "events.dlq",
		PoisonAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, p,
		func(ctx context.Context, _ kafka.Message) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			handled.Add(1)
			return nil
		}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	total := func() (sum int64, parts int) {
		for _, l := range c.Lag() {
			sum += l.Lag
			parts++
		}
		return sum, parts
	}
	// Stuck on the first message: the other 29 are behind it.
	waitFor(t, func() bool { lag, _ := total(); return lag == 29 }, "a lag of 29 while the handler is stuck")
	close(release)
	waitFor(t, func() bool { return handled.Load() == 30 }, "the 30 messages handled")
	waitFor(t, func() bool { lag, parts := total(); return lag == 0 && parts == 1 }, "no lag once handled")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestConsumerRereadsABrokerThatLostItsLog: the embedded broker restarts empty while the
// consumer's position is 10 into a partition; events published to the new log before the
// consumer fetches would sit below that position and be skipped. The consumer sees the new
// cluster id and reads the partition again from its start.
func TestConsumerRereadsABrokerThatLostItsLog(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	var mu sync.Mutex
	seen := map[string]int{}
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for v := range seen {
			if strings.HasPrefix(v, prefix) {
				n++
			}
		}
		return n
	}
	c, err := kafka.NewConsumer(kafka.ConsumerConfig{Brokers: b.Addr(), Group: "g-rewind", Topic: "events", DLQTopic: "events.dlq",
		PoisonAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, WatchEvery: 200 * time.Millisecond},
		newProducer(t, b.Addr()), func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[string(m.Value)]++
			return nil
		}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	publish := func(p *kafka.Producer, prefix string, n int) {
		t.Helper()
		events := make([]domain.Event, n)
		for i := range events {
			events[i] = event(0) // one key: one partition
			events[i].Payload = []byte(fmt.Sprintf("%s-%d", prefix, i))
		}
		if err := p.Publish(context.Background(), events); err != nil {
			t.Fatalf("publish %s: %v", prefix, err)
		}
	}
	publish(newProducer(t, b.Addr()), "before", 10)
	waitFor(t, func() bool { return count("before") == 10 }, "the first 10 events")

	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	after := newProducer(t, b.Addr())
	publish(after, "after", 10) // offsets 0 to 9 of the new log: below the consumer's position
	publish(after, "last", 1)
	waitFor(t, func() bool { return count("after") == 10 && count("last") == 1 }, "every event of the new log")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
