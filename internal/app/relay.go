package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flashsale/flashsale/internal/ports"
)

// RelayOutboxHandler publishes the outbox to the broker, puts back what a broker lost, and
// keeps the account operators read to tell whether events get out.
type RelayOutboxHandler struct {
	Outbox    ports.Outbox
	Publisher ports.EventPublisher
	Metrics   ports.Metrics
	Batch     int
	// Broker and Recovery watch for a broker that lost what it had
	// acknowledged (the embedded broker restarted empty): before each pass the broker's
	// incarnation is compared with the one recorded, and the events published to a lost one go
	// back in the outbox. ResendMargin widens that to batches in flight as it changed.
	Broker       ports.BrokerWatcher
	Recovery     ports.OutboxRecovery
	ResendMargin time.Duration
	// WatchEvery spaces the broker's incarnation checks that succeed (0: every pass).
	WatchEvery time.Duration
	// UnhealthyAfter: the relay is unhealthy once events have waited this long and nothing was
	// published for as long, or no pass ended for as long.
	UnhealthyAfter time.Duration
	Log            *slog.Logger
	Now            func() time.Time

	mu    sync.Mutex
	state relayState
}

// relayState is what the relay remembers of its passes.
type relayState struct {
	started, lastPass, lastPublish time.Time
	pending                        int
	oldest                         time.Duration
	lastErr                        error
	published, resent              uint64
	incarnation                    string    // the broker's, as last recorded
	watched                        time.Time // when the broker was last asked
}

// Handle publishes batches until the outbox is empty or publishing fails, and returns how
// many events went out. A failed batch stays in the outbox for the next pass.
func (h *RelayOutboxHandler) Handle(ctx context.Context) (int, error) {
	h.mu.Lock()
	if h.state.started.IsZero() {
		h.state.started = h.Now()
	}
	h.mu.Unlock()
	h.resendLost(ctx)
	total := 0
	var err error
	for {
		var n int
		n, err = h.Outbox.RelayPending(ctx, h.Batch, h.Publisher.Publish)
		total += n
		if n > 0 {
			h.mu.Lock()
			h.state.lastPublish = h.Now()
			h.state.published += uint64(n)
			h.mu.Unlock()
		}
		if err != nil || n < h.Batch {
			break
		}
	}
	pending, oldest, berr := h.Outbox.Backlog(ctx)
	if berr == nil {
		h.Metrics.OutboxBacklog(pending, oldest)
		if err != nil {
			err = fmt.Errorf("%w (%d events waiting, oldest %s)", err, pending, oldest.Round(time.Second))
		}
	}
	h.mu.Lock()
	h.state.lastPass, h.state.lastErr = h.Now(), err
	if berr == nil {
		h.state.pending, h.state.oldest = pending, oldest
	} else if err == nil {
		h.state.lastErr = berr
	}
	h.mu.Unlock()
	return total, err
}

// resendLost puts back in the outbox the events a broker lost. A broker that does not answer
// is left to the publish that follows, which fails and says so.
func (h *RelayOutboxHandler) resendLost(ctx context.Context) {
	now := h.Now()
	h.mu.Lock()
	due := h.state.watched.IsZero() || now.Sub(h.state.watched) >= h.WatchEvery
	known := h.state.incarnation
	h.mu.Unlock()
	if !due {
		return
	}
	incarnation, err := h.Broker.Incarnation(ctx)
	if err != nil {
		return
	}
	n := 0
	if incarnation != known {
		if n, err = h.Recovery.ResendLost(ctx, incarnation, h.ResendMargin); err != nil {
			h.Log.WarnContext(ctx, "outbox relay: cannot compare the broker with the one published to", "err", err)
			return
		}
	}
	h.mu.Lock()
	h.state.incarnation, h.state.watched = incarnation, now
	h.state.resent += uint64(n)
	h.mu.Unlock()
	if n > 0 {
		h.Log.WarnContext(ctx, "outbox relay: the broker lost events it had acknowledged (it restarted empty); sending them again",
			"events", n, "broker", incarnation)
	}
}

// RelayStatus is the relay as operators see it.
type RelayStatus struct {
	// Healthy: events get out, or none wait. Problem says why not.
	Healthy bool
	Problem string
	// Pending and Oldest describe the outbox at the last pass.
	Pending int
	Oldest  time.Duration
	// LastPublish is when a batch last went out (zero: not yet); LastError the last pass's.
	LastPublish time.Time
	LastError   string
	// Published counts the events published, Resent those put back because the broker lost them.
	Published, Resent uint64
}

// Status reports the relay's health now: unhealthy once events have waited UnhealthyAfter
// with nothing published for as long (the broker refuses them, the producer is stuck), or when
// no pass has ended for UnhealthyAfter (the relay itself is stuck).
func (h *RelayOutboxHandler) Status() RelayStatus {
	h.mu.Lock()
	st := h.state
	h.mu.Unlock()
	now := h.Now()
	s := RelayStatus{Healthy: true, Pending: st.pending, Oldest: st.oldest, LastPublish: st.lastPublish,
		Published: st.published, Resent: st.resent}
	if st.lastErr != nil {
		s.LastError = st.lastErr.Error()
	}
	if st.started.IsZero() {
		return s // no pass yet
	}
	lastPass := st.lastPass
	if lastPass.IsZero() {
		lastPass = st.started
	}
	progress := st.lastPublish
	if progress.Before(st.started) {
		progress = st.started
	}
	waited := st.oldest + now.Sub(lastPass)
	switch {
	case now.Sub(lastPass) >= h.UnhealthyAfter:
		s.Healthy = false
		s.Problem = fmt.Sprintf("no relay pass has ended for %s", now.Sub(lastPass).Round(time.Second))
	case st.pending > 0 && waited >= h.UnhealthyAfter && now.Sub(progress) >= h.UnhealthyAfter:
		s.Healthy = false
		s.Problem = fmt.Sprintf("%d events waiting, the oldest for %s; nothing published for %s",
			st.pending, waited.Round(time.Second), now.Sub(progress).Round(time.Second))
	}
	if !s.Healthy && s.LastError != "" {
		s.Problem += ": " + s.LastError
	}
	return s
}
