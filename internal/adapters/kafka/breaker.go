package kafka

import (
	"context"
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
}

var _ ports.EventPublisher = (*GuardedPublisher)(nil)

// NewGuardedPublisher opens after failures consecutive failures and retries after openFor.
func NewGuardedPublisher(next ports.EventPublisher, failures uint32, openFor time.Duration, log *slog.Logger) *GuardedPublisher {
	return &GuardedPublisher{next: next, cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
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
		return fmt.Errorf("publish %d events: %w", len(events), err)
	}
	return nil
}

// State reports the breaker's state (closed, half-open, open).
func (g *GuardedPublisher) State() string { return g.cb.State().String() }
