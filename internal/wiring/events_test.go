package wiring

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/config"
)

// logCounter counts records by level.
type logCounter struct {
	mu    sync.Mutex
	warns []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Level == slog.LevelWarn {
		l.warns = append(l.warns, r.Message)
	}
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func TestTopicCreatorRetriesWithBackoffUntilTheTopicsExist(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	logs := &logCounter{}
	tc := newTopicCreator(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) < 5 {
			return errors.New("broker down")
		}
		return nil
	}, slog.New(logs))
	tc.first, tc.most = 10*time.Millisecond, 40*time.Millisecond

	begin := time.Now()
	if err := tc.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 50*time.Millisecond {
		t.Fatalf("start took %v: it must only start the work", d)
	}
	select {
	case <-tc.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the topics were never created")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 5 {
		t.Fatalf("%d attempts, want 5 (stop at the first success)", len(at))
	}
	// Waits of 10, 20, 40 and 40 ms: doubling, capped.
	ms := time.Millisecond
	for i, want := range []time.Duration{10 * ms, 20 * ms, 40 * ms, 40 * ms} {
		if gap := at[i+1].Sub(at[i]); gap < want {
			t.Errorf("wait %d: %v, want at least %v", i+1, gap, want)
		}
	}
	if len(logs.warns) != 1 {
		t.Errorf("warnings %q, want one, at the first failure", logs.warns)
	}
	if err := tc.stop(context.Background()); err != nil {
		t.Fatalf("stop after the work ended: %v", err)
	}
}

func TestTopicCreatorStopCancelsTheAttemptAndWaits(t *testing.T) {
	attempting := make(chan struct{})
	var sawCancel bool
	tc := newTopicCreator(func(ctx context.Context) error {
		close(attempting)
		<-ctx.Done() // a broker that never answers
		time.Sleep(20 * time.Millisecond)
		sawCancel = true
		return ctx.Err()
	}, slog.New(slog.DiscardHandler))
	if err := tc.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-attempting
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !sawCancel { // stop returned before the attempt had ended
		t.Fatal("stop did not wait for the work")
	}
	select {
	case <-tc.done:
	default:
		t.Fatal("the work still runs after stop")
	}
}

// TestKafkaRoleStartsWithTheBrokerDown: with nothing listening at KAFKA_BROKERS the Kafka module
// starts at once and stops at once.
func TestKafkaRoleStartsWithTheBrokerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	_ = ln.Close()

	cfg := config.Defaults()
	cfg.KafkaBrokers, cfg.LogLevel = down, "error"
	var brokers Brokers
	app := fx.New(Config(cfg), Kafka, fx.Populate(&brokers))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	if err := app.Start(ctx); err != nil {
		t.Fatalf("start with Kafka down: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("start took %v with Kafka down", d)
	}
	if !strings.Contains(string(brokers), down) {
		t.Errorf("brokers %q, want %q", brokers, down)
	}
	time.Sleep(100 * time.Millisecond) // the first attempt is under way
	begin = time.Now()
	if err := app.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("stop took %v", d)
	}
}
