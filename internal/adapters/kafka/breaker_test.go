package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/domain"
)

var errBrokerDown = errors.New("broker down")

const openFor = 500 * time.Millisecond

// stubPublisher is a ports.EventPublisher that fails while err is set and counts its calls.
// If gate is set, the next call (one only) waits for it after counting, to hold a call in flight.
type stubPublisher struct {
	mu    sync.Mutex
	calls int
	err   error
	gate  chan struct{}
	in    chan struct{} // receives a value when a gated call has started
}

func (s *stubPublisher) Publish(context.Context, []domain.Event) error {
	s.mu.Lock()
	s.calls++
	err, gate, in := s.err, s.gate, s.in
	s.gate = nil
	s.mu.Unlock()
	if gate != nil {
		in <- struct{}{}
		<-gate
	}
	return err
}

func (s *stubPublisher) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *stubPublisher) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// logCollector keeps the breaker's log messages.
type logCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logCollector) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCollector) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, line)
	return nil
}
func (l *logCollector) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCollector) WithGroup(string) slog.Handler      { return l }

func (l *logCollector) contains(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// waitState polls the breaker until it reports want: no assertion on how long it takes.
func waitState(t *testing.T, g *kafka.GuardedPublisher, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang guard only
	for g.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("breaker stayed %s, never became %s", g.State(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publish(g *kafka.GuardedPublisher) error {
	return g.Publish(context.Background(), []domain.Event{{Topic: "t", Key: "k"}, {Topic: "t", Key: "k2"}})
}

func TestGuardedPublisherOpensHalfOpensAndCloses(t *testing.T) {
	t.Parallel()
	stub := &stubPublisher{err: errBrokerDown}
	logs := &logCollector{}
	// openFor is short, yet long enough that the in-memory calls made while the breaker is
	// open finish before it half-opens, even on a loaded machine.
	g := kafka.NewGuardedPublisher(stub, 3, openFor, nil, slog.New(logs))
	if g.State() != "closed" {
		t.Fatalf("new breaker is %s, want closed", g.State())
	}

	// Failures below the threshold reach the broker and leave the breaker closed.
	for i := 1; i <= 3; i++ {
		err := publish(g)
		if !errors.Is(err, errBrokerDown) || !strings.Contains(err.Error(), "publish 2 events") {
			t.Fatalf("failure %d: error %v, want the broker's error, wrapped with the batch size", i, err)
		}
		if stub.count() != i {
			t.Fatalf("broker called %d times after %d publishes", stub.count(), i)
		}
		if want := map[bool]string{true: "open", false: "closed"}[i == 3]; g.State() != want {
			t.Fatalf("after %d failures the breaker is %s, want %s", i, g.State(), want)
		}
	}
	if !logs.contains("from=closed") || !logs.contains("to=open") {
		t.Errorf("no state change logged: %v", logs.msgs)
	}

	// Open: calls fail fast without reaching the broker.
	for range 5 {
		if err := publish(g); !errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("publish while open = %v, want ErrOpenState", err)
		}
	}
	if stub.count() != 3 {
		t.Fatalf("broker called %d times while open, want still 3", stub.count())
	}

	// After openFor one call goes through; it fails, so the breaker opens again.
	waitState(t, g, "half-open")
	if err := publish(g); !errors.Is(err, errBrokerDown) {
		t.Fatalf("half-open trial = %v, want the broker's error", err)
	}
	if stub.count() != 4 || g.State() != "open" {
		t.Fatalf("after a failed trial: %d broker calls, state %s; want 4 and open", stub.count(), g.State())
	}
	if err := publish(g); !errors.Is(err, gobreaker.ErrOpenState) || stub.count() != 4 {
		t.Fatalf("publish after failed trial = %v (%d calls), want ErrOpenState without a call", err, stub.count())
	}

	// The broker is back: the next trial succeeds and closes the breaker.
	stub.set(nil)
	waitState(t, g, "half-open")
	if err := publish(g); err != nil {
		t.Fatalf("half-open trial with the broker back = %v", err)
	}
	if stub.count() != 5 || g.State() != "closed" {
		t.Fatalf("after a good trial: %d broker calls, state %s; want 5 and closed", stub.count(), g.State())
	}
	if !logs.contains("to=closed") {
		t.Errorf("closing not logged: %v", logs.msgs)
	}

	// Closed again, the count of failures starts over, and a success resets it.
	stub.set(errBrokerDown)
	for range 2 {
		_ = publish(g)
	}
	stub.set(nil)
	if err := publish(g); err != nil {
		t.Fatal(err)
	}
	stub.set(errBrokerDown)
	for range 2 {
		_ = publish(g)
	}
	if g.State() != "closed" || stub.count() != 10 {
		t.Fatalf("two failures, a success, two failures: state %s after %d calls, want closed after 10", g.State(), stub.count())
	}
	_ = publish(g)
	if g.State() != "open" {
		t.Fatalf("third consecutive failure left the breaker %s, want open", g.State())
	}
}

// Half-open lets exactly one call through: a second one while the trial is in flight fails
// without reaching the broker.
func TestGuardedPublisherHalfOpenAdmitsOneCall(t *testing.T) {
	t.Parallel()
	stub := &stubPublisher{err: errBrokerDown}
	g := kafka.NewGuardedPublisher(stub, 1, openFor, nil, slog.New(slog.DiscardHandler))
	if err := publish(g); !errors.Is(err, errBrokerDown) || g.State() != "open" {
		t.Fatalf("first failure = %v, state %s; want the broker's error and open", err, g.State())
	}
	waitState(t, g, "half-open")

	stub.mu.Lock()
	stub.err, stub.gate, stub.in = nil, make(chan struct{}), make(chan struct{}, 1)
	gate, in := stub.gate, stub.in
	stub.mu.Unlock()
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(gate) }) }) // never leave the trial hanging
	trial := make(chan error, 1)
	go func() { trial <- publish(g) }()
	<-in // the trial is at the broker

	if err := publish(g); !errors.Is(err, gobreaker.ErrTooManyRequests) {
		t.Fatalf("second call while the trial runs = %v, want ErrTooManyRequests", err)
	}
	if stub.count() != 2 {
		t.Fatalf("broker called %d times, want 2 (the failure and the trial)", stub.count())
	}
	release.Do(func() { close(gate) })
	if err := <-trial; err != nil {
		t.Fatalf("trial = %v", err)
	}
	if g.State() != "closed" {
		t.Fatalf("after the trial succeeded the breaker is %s, want closed", g.State())
	}
}
