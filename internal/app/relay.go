package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flashsale/flashsale/internal/ports"
)

// RelayOutboxHandler publishes the outbox to the broker, and puts back what a broker lost.
type RelayOutboxHandler struct {
	Outbox    ports.Outbox
	Publisher ports.EventPublisher
	Metrics   ports.Metrics
	Batch     int
	// Broker and Recovery, when both are set, watch for a broker that lost what it had
	// acknowledged (the embedded broker restarted empty): before each pass the broker's
	// incarnation is compared with the one recorded, and the events published to a lost one go
	// back in the outbox. ResendMargin widens that to batches in flight as it changed.
	Broker       ports.BrokerWatcher
	Recovery     ports.OutboxRecovery
	ResendMargin time.Duration
	Log          *slog.Logger

	mu          sync.Mutex
	incarnation string // the broker's, as last recorded
	resent      uint64
}

// Handle publishes batches until the outbox is empty or publishing fails, and returns how
// many events went out. A failed batch stays in the outbox for the next pass.
func (h *RelayOutboxHandler) Handle(ctx context.Context) (int, error) {
	h.resendLost(ctx)
	total := 0
	var err error
	for {
		var n int
		n, err = h.Outbox.RelayPending(ctx, h.Batch, h.Publisher.Publish)
		total += n
		if err != nil || n < h.Batch {
			break
		}
	}
	if pending, oldest, berr := h.Outbox.Backlog(ctx); berr == nil {
		h.Metrics.OutboxBacklog(pending, oldest)
		if err != nil {
			err = fmt.Errorf("%w (%d events waiting, oldest %s)", err, pending, oldest.Round(time.Second))
		}
	}
	return total, err
}

// resendLost puts back in the outbox the events a broker lost. A broker that does not answer
// is left to the publish that follows, which fails and says so.
func (h *RelayOutboxHandler) resendLost(ctx context.Context) {
	if h.Broker == nil || h.Recovery == nil {
		return
	}
	incarnation, err := h.Broker.Incarnation(ctx)
	if err != nil {
		return
	}
	h.mu.Lock()
	known := h.incarnation
	h.mu.Unlock()
	if incarnation == known {
		return
	}
	n, err := h.Recovery.ResendLost(ctx, incarnation, h.ResendMargin)
	if err != nil {
		h.Log.WarnContext(ctx, "outbox relay: cannot compare the broker with the one published to", "err", err)
		return
	}
	h.mu.Lock()
	h.incarnation = incarnation
	h.resent += uint64(n)
	h.mu.Unlock()
	if n > 0 {
		h.Log.WarnContext(ctx, "outbox relay: the broker lost events it had acknowledged (it restarted empty); sending them again",
			"events", n, "broker", incarnation)
	}
}

// Resent counts the events put back in the outbox because the broker lost them.
func (h *RelayOutboxHandler) Resent() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resent
}
