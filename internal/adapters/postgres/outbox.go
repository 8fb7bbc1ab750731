package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

var _ ports.Outbox = (*Store)(nil)

// insertEvent adds one unpublished event to the outbox; the caller classifies the error.
func insertEvent(ctx context.Context, q *sqlcdb.Queries, e domain.Event) error {
	err := q.InsertOutboxEvent(ctx, sqlcdb.InsertOutboxEventParams{
		ID: e.ID, TenantID: e.TenantID, Topic: e.Topic, Key: e.Key, Type: e.Type, Payload: e.Payload, CreatedAt: e.CreatedAt,
	})
	if err != nil {
		return fmt.Errorf("insert outbox event %s (%s): %w", e.ID, e.Type, err)
	}
	return nil
}

// RelayPending implements ports.Outbox. The claimed rows stay locked (FOR UPDATE SKIP LOCKED)
// while publish runs, so relays on several nodes never publish the same row at once.
func (s *Store) RelayPending(ctx context.Context, limit int, publish func(context.Context, []domain.Event) error) (int, error) {
	var published int
	var publishErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		rows, err := q.ClaimOutboxBatch(ctx, int32(limit))
		if err != nil || len(rows) == 0 {
			return err
		}
		events := make([]domain.Event, len(rows))
		ids := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			events[i] = domain.Event{ID: r.ID, TenantID: r.TenantID, Topic: r.Topic, Key: r.Key, Type: r.Type,
				Payload: r.Payload, CreatedAt: r.CreatedAt}
			ids[i] = r.ID
		}
		if publishErr = publish(ctx, events); publishErr != nil {
			return q.MarkOutboxFailed(ctx, sqlcdb.MarkOutboxFailedParams{LastError: publishErr.Error(), Ids: ids})
		}
		published = len(rows)
		return q.MarkOutboxPublished(ctx, ids)
	})
	if err == nil {
		err = publishErr
	}
	if err != nil { // nothing was marked published: the batch goes again (consumers are idempotent)
		return 0, classify("relay outbox", err)
	}
	return published, nil
}

// Backlog implements ports.Outbox.
func (s *Store) Backlog(ctx context.Context) (int, time.Duration, error) {
	b, err := s.q.OutboxBacklog(ctx)
	if err != nil {
		return 0, 0, classify("outbox backlog", err)
	}
	return int(b.Unpublished), time.Duration(b.OldestSeconds * float64(time.Second)), nil
}
