package kafka_test

import (
	"context"
	"errors"
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

// TestEmbeddedBrokerKeepsItsDirectory: with a directory the broker restarts with its log and
// the consumer groups' offsets, under the same cluster id; without one it restarts empty under
// a new id.
func TestEmbeddedBrokerKeepsItsDirectory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dir  string
	}{{"in memory", ""}, {"with a directory", t.TempDir()}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: tc.dir, Topics: testTopics}, slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			p := newProducer(t, b.Addr())
			sent := events(12, 0)
			if err := p.Publish(context.Background(), sent); err != nil {
				t.Fatal(err)
			}
			commitAll(t, b.Addr(), "g", len(sent))
			w, err := kafka.NewClusterWatcher(b.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			before, err := w.Incarnation(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			port := b.Port()
			if err := b.Restart(); err != nil {
				t.Fatal(err)
			}
			if b.Port() != port {
				t.Fatalf("restarted on port %d, want %d", b.Port(), port)
			}
			var after string
			deadline := time.Now().Add(10 * time.Second)
			for after, err = w.Incarnation(context.Background()); err != nil; after, err = w.Incarnation(context.Background()) {
				if time.Now().After(deadline) {
					t.Fatalf("incarnation after the restart: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			ids := topicEventIDs(t, b.Addr())
			committed := committedSum(t, b.Addr(), "g")
			if tc.dir == "" {
				if len(ids) != 0 || committed != 0 || after == before {
					t.Fatalf("in memory: %d events, %d committed and incarnation %q -> %q after a restart; want none, none and a new one",
						len(ids), committed, before, after)
				}
				return
			}
			if after != before || committed != int64(len(sent)) {
				t.Fatalf("with a directory: incarnation %q -> %q, group offsets %d; want the same, %d", before, after, committed, len(sent))
			}
			for _, e := range sent {
				if ids[e.ID.String()] != 1 {
					t.Fatalf("event %s on the restarted broker %d times, want once", e.ID, ids[e.ID.String()])
				}
			}
		})
	}
}

// commitAll consumes n messages of "events" as group and commits their offsets.
func commitAll(t *testing.T, brokers, group string, n int) {
	t.Helper()
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{"bootstrap.servers": brokers, "group.id": group,
		"auto.offset.reset": "earliest", "enable.auto.commit": false, "log_level": 4, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe("events", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for got := 0; got < n; {
		if time.Now().After(deadline) {
			t.Fatalf("group %s read %d of %d", group, got, n)
		}
		if _, err := c.ReadMessage(time.Second); err == nil {
			got++
		}
	}
	if _, err := c.Commit(); err != nil {
		t.Fatal(err)
	}
}

// committedSum adds up the group's committed offsets on "events".
func committedSum(t *testing.T, brokers, group string) int64 {
	t.Helper()
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{"bootstrap.servers": brokers, "group.id": group,
		"log_level": 4, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := "events"
	parts := []ckafka.TopicPartition{{Topic: &topic, Partition: 0}, {Topic: &topic, Partition: 1}, {Topic: &topic, Partition: 2}}
	got, err := c.Committed(parts, 10000)
	if kerr := (ckafka.Error{}); errors.As(err, &kerr) && kerr.Code() == ckafka.ErrGroupIDNotFound {
		return 0 // the broker does not know the group at all
	}
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, tp := range got {
		if tp.Offset >= 0 {
			sum += int64(tp.Offset)
		}
	}
	return sum
}
