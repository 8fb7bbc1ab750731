package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flashsale/flashsale/internal/domain"
)

// outboxRow is one outbox event and its publishing record.
type outboxRow struct {
	event       domain.Event
	held        bool // claimed by a relay: its row lock
	publishedAt *time.Time
	attempts    int
	lastError   string
}

// insertEvent adds an unpublished event, once per id (ON CONFLICT DO NOTHING); s.mu is held.
func (s *Store) insertEvent(e domain.Event) {
	if s.eventIDs[e.ID] {
		return
	}
	e.Payload, e.CreatedAt = bytes.Clone(e.Payload), pgTime(e.CreatedAt)
	s.eventIDs[e.ID] = true
	s.outbox = append(s.outbox, &outboxRow{event: e})
}

// RelayPending implements ports.Outbox: the claimed rows are held (skipped by other relays)
// while publish runs without the store's lock.
func (s *Store) RelayPending(ctx context.Context, limit int, publish func(context.Context, []domain.Event) error) (int, error) {
	s.mu.Lock()
	var batch []*outboxRow
	for _, row := range s.outbox {
		if row.publishedAt == nil && !row.held {
			batch = append(batch, row)
		}
	}
	slices.SortFunc(batch, func(a, b *outboxRow) int {
		if c := a.event.CreatedAt.Compare(b.event.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.event.ID[:], b.event.ID[:])
	})
	batch = batch[:min(len(batch), max(limit, 0))]
	events := make([]domain.Event, len(batch))
	for i, row := range batch {
		row.held = true
		events[i] = row.event
		events[i].Payload = bytes.Clone(row.event.Payload)
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}

	err := publish(ctx, events)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	for _, row := range batch {
		row.held = false
		row.attempts++
		if err != nil {
			row.lastError = err.Error()
		} else {
			row.publishedAt, row.lastError = &now, ""
		}
	}
	if err != nil { // nothing was marked published: the batch goes again
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	return len(batch), nil
}

// Backlog implements ports.Outbox.
func (s *Store) Backlog(context.Context) (int, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	var oldest time.Time
	for _, row := range s.outbox {
		if row.publishedAt != nil {
			continue
		}
		if pending == 0 || row.event.CreatedAt.Before(oldest) {
			oldest = row.event.CreatedAt
		}
		pending++
	}
	if pending == 0 {
		return 0, 0, nil
	}
	return pending, s.clock().Sub(oldest), nil
}

// OutboxRow is an outbox event and its publishing record, as the table keeps them.
type OutboxRow struct {
	Event       domain.Event
	PublishedAt *time.Time
	Attempts    int
	LastError   string
}

// OutboxRows copies the outbox in the order the events were written: an inspection for tests.
func (s *Store) OutboxRows() []OutboxRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OutboxRow, len(s.outbox))
	for i, row := range s.outbox {
		out[i] = OutboxRow{Event: row.event, PublishedAt: row.publishedAt, Attempts: row.attempts, LastError: row.lastError}
		out[i].Event.Payload = bytes.Clone(row.event.Payload)
	}
	return out
}

// ResendLost implements ports.OutboxRecovery as the PostgreSQL store does: the first
// incarnation recorded marks nothing; a new one marks every event published since the previous
// one was first seen (less margin) unpublished again, with the reason.
func (s *Store) ResendLost(_ context.Context, incarnation string, margin time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.broker == "" || s.broker == incarnation {
		if s.broker == "" {
			s.broker, s.brokerSeen = incarnation, now
		}
		return 0, nil
	}
	since := s.brokerSeen.Add(-margin)
	n := 0
	for _, row := range s.outbox {
		if row.publishedAt != nil && !row.publishedAt.Before(since) {
			row.publishedAt = nil
			row.lastError = fmt.Sprintf("the broker lost it (%s, now %s); sent again", s.broker, incarnation)
			n++
		}
	}
	s.broker, s.brokerSeen = incarnation, now
	return n, nil
}
