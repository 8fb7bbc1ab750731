package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/domain"
)

// observer records what the producer reports to the metrics.
type observer struct {
	mu       sync.Mutex
	failures map[string]int
	restarts int
}

func newObserver() *observer { return &observer{failures: map[string]int{}} }

func (o *observer) PublishFailed(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures[kind]++
}

func (o *observer) ProducerRestarted() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.restarts++
}

func (o *observer) counts() (map[string]int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := map[string]int{}
	for k, v := range o.failures {
		f[k] = v
	}
	return f, o.restarts
}

func observedProducer(t *testing.T, brokers string, backoff time.Duration) (*kafka.Producer, *observer) {
	t.Helper()
	obs := newObserver()
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, ClientID: "test", DeliveryTimeout: 10 * time.Second,
		RestartBackoff: backoff, RestartMaxBackoff: 4 * backoff, Observer: obs}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	return p, obs
}

func events(n, from int) []domain.Event {
	out := make([]domain.Event, n)
	for i := range out {
		out[i] = event(from + i)
	}
	return out
}

// topicEventIDs reads the whole of topic "events" and counts the messages by event-id header.
func topicEventIDs(t *testing.T, brokers string) map[string]int {
	t.Helper()
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{"bootstrap.servers": brokers, "group.id": "reader",
		"enable.auto.commit": false, "log_level": 4, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := "events"
	var parts []ckafka.TopicPartition
	var want int64
	for p := range int32(3) {
		_, high, err := c.QueryWatermarkOffsets(topic, p, 10000)
		if err != nil {
			t.Fatal(err)
		}
		want += high
		parts = append(parts, ckafka.TopicPartition{Topic: &topic, Partition: p, Offset: ckafka.OffsetBeginning})
	}
	if err := c.Assign(parts); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for got := int64(0); got < want; {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d messages", got, want)
		}
		m, err := c.ReadMessage(time.Second)
		if err != nil {
			continue
		}
		got++
		for _, h := range m.Headers {
			if h.Key == "event-id" {
				ids[string(h.Value)]++
			}
		}
	}
	return ids
}

func waitReplacing(t *testing.T, p *kafka.Producer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !p.Replacing() {
		if time.Now().After(deadline) {
			t.Fatal("the producer was not retired after its fatal error")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProducerReplacedAfterFatalError: a librdkafka producer that failed fatally refuses every
// message for good. The producer retires it and publishes on a new one; the old one is
// destroyed.
func TestProducerReplacedAfterFatalError(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	p, obs := observedProducer(t, b.Addr(), 200*time.Millisecond)
	ctx := context.Background()
	if err := p.Publish(ctx, events(5, 0)); err != nil {
		t.Fatalf("publish before the fault: %v", err)
	}

	if err := p.InjectFatalError(); err != nil {
		t.Fatal(err)
	}
	waitReplacing(t, p) // the fatal error arrives on the event channel: retired at once

	more := events(5, 100)
	if err := p.Publish(ctx, more); err != nil {
		t.Fatalf("publish after the fatal error = %v, want it sent on a new producer", err)
	}
	if _, restarts := obs.counts(); restarts != 1 {
		t.Fatalf("%d producer restarts, want 1", restarts)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Producers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d librdkafka producers alive, want the new one only", p.Producers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ids := topicEventIDs(t, b.Addr())
	for _, e := range more {
		if ids[e.ID.String()] != 1 {
			t.Fatalf("event %s on the topic %d times after the replacement, want once", e.ID, ids[e.ID.String()])
		}
	}
}

// TestProducerReplacementBacksOff: a producer that fails fatally again before anything was
// published is replaced after a wait (RestartBackoff, doubling); publishing meanwhile fails
// fast, and a success makes the next replacement immediate again.
func TestProducerReplacementBacksOff(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	const backoff = 300 * time.Millisecond
	p, obs := observedProducer(t, b.Addr(), backoff)
	ctx := context.Background()

	if err := p.InjectFatalError(); err != nil { // the first producer fails
		t.Fatal(err)
	}
	waitReplacing(t, p)
	if err := p.InjectFatalError(); err != nil { // its replacement, built at once, fails too
		t.Fatalf("the first replacement must be immediate: %v", err)
	}
	waitReplacing(t, p)
	failedAt := time.Now()

	err := p.Publish(ctx, events(1, 0))
	if err == nil || !strings.Contains(err.Error(), "next attempt in") {
		t.Fatalf("publish within the backoff = %v, want a fast failure saying when the next attempt is", err)
	}
	if f, restarts := obs.counts(); f[kafka.FailureRestarting] != 1 || restarts != 1 {
		t.Fatalf("failures %v, restarts %d; want one 'restarting' failure and one restart", f, restarts)
	}

	time.Sleep(time.Until(failedAt.Add(backoff + 50*time.Millisecond)))
	if err := p.Publish(ctx, events(3, 10)); err != nil {
		t.Fatalf("publish after the backoff: %v", err)
	}
	if _, restarts := obs.counts(); restarts != 2 {
		t.Fatalf("%d restarts, want 2", restarts)
	}

	// A success resets the backoff: the next fatal error is replaced at once.
	if err := p.InjectFatalError(); err != nil {
		t.Fatal(err)
	}
	waitReplacing(t, p)
	if err := p.Publish(ctx, events(1, 20)); err != nil {
		t.Fatalf("publish after a fatal error that followed a success: %v", err)
	}
}

// TestProducerSurvivesAnEmptyBrokerRestart: the broker restarts empty under an idempotent
// producer, which then fails fatally ("out of order sequence number"). The batch that hit it
// fails, so the caller keeps it; sent again, it goes out on a new producer, once.
func TestProducerSurvivesAnEmptyBrokerRestart(t *testing.T) {
	t.Parallel()
	b := newBroker(t)
	p, obs := observedProducer(t, b.Addr(), 200*time.Millisecond)
	ctx := context.Background()
	if err := p.Publish(ctx, events(30, 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}

	batch := events(30, 100)
	var failures []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := p.Publish(ctx, batch)
		if err == nil {
			break
		}
		failures = append(failures, err.Error())
		if time.Now().After(deadline) {
			t.Fatalf("the batch never went out after the restart: %v", failures)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f, restarts := obs.counts()
	t.Logf("failed attempts before the batch went out: %d %v; failures by kind %v; restarts %d", len(failures), failures, f, restarts)
	if f[kafka.FailureFatal] < 1 || restarts < 1 {
		t.Fatalf("failures %v, restarts %d: the restart should have made the producer fail fatally and be replaced", f, restarts)
	}
	ids := topicEventIDs(t, b.Addr())
	for _, e := range batch {
		if ids[e.ID.String()] < 1 {
			t.Fatalf("event %s missing from the restarted broker", e.ID)
		}
	}
}
