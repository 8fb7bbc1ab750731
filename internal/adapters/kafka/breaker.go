package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// GuardedPublisher puts a circuit breaker in front of a publisher: after a few failed
// deliveries in a row it stops calling a dead broker and fails fast, then lets one try through
// after a pause. Events stay in the outbox meanwhile.
type GuardedPublisher struct {
	next ports.EventPublisher
	cb   *gobreaker.CircuitBreaker[struct{}]
	obs  Observer
}

var _ ports.EventPublisher = (*GuardedPublisher)(nil)

// NewGuardedPublisher opens after failures consecutive failures and retries after openFor. obs
// (may be nil) counts the calls the open breaker refuses.
func NewGuardedPublisher(next ports.EventPublisher, failures uint32, openFor time.Duration, obs Observer, log *slog.Logger) *GuardedPublisher {
	return &GuardedPublisher{next: next, obs: obs, cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "kafka-publish",
		MaxRequests: 1,
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Warn("circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
	})}
}

// Publish implements ports.EventPublisher.
func (g *GuardedPublisher) Publish(ctx context.Context, events []domain.Event) error {
	_, err := g.cb.Execute(func() (struct{}, error) { return struct{}{}, g.next.Publish(ctx, events) })
	if err != nil {
		if g.obs != nil && (errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)) {
			g.obs.PublishFailed(FailureCircuitOpen)
		}
		return fmt.Errorf("publish %d events: %w", len(events), err)
	}
	return nil
}

// State reports the breaker's state (closed, half-open, open).
func (g *GuardedPublisher) State() string { return g.cb.State().String() }
