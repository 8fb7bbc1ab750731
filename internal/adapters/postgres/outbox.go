package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/spans"
)

var (
	_ ports.Outbox         = (*Store)(nil)
	_ ports.OutboxRecovery = (*Store)(nil)
)

// insertEvent adds one unpublished event to the outbox, with the trace it belongs to (the
// event's own, else ctx's); the caller classifies the error.
func insertEvent(ctx context.Context, q *sqlcdb.Queries, e domain.Event) error {
	if e.TraceParent == "" {
		e.TraceParent = spans.TraceParent(ctx)
	}
	err := q.InsertOutboxEvent(ctx, sqlcdb.InsertOutboxEventParams{
		ID: e.ID, TenantID: e.TenantID, Topic: e.Topic, Key: e.Key, Type: e.Type, Payload: e.Payload, CreatedAt: e.CreatedAt,
		Traceparent: pgtype.Text{String: e.TraceParent, Valid: e.TraceParent != ""},
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
				Payload: r.Payload, CreatedAt: r.CreatedAt, TraceParent: r.Traceparent.String}
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

// ResendLost implements ports.OutboxRecovery. Relays that notice a new incarnation at once take
// turns on the recorded one (a row lock): the first marks the lost events, the others find the
// new incarnation recorded and mark nothing.
func (s *Store) ResendLost(ctx context.Context, incarnation string, margin time.Duration) (int, error) {
	var requeued int64
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		last, err := q.LockOutboxBroker(ctx)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // the first incarnation: nothing was published before it
		case err != nil:
			return err
		case last.Incarnation == incarnation:
			return nil
		default:
			requeued, err = q.RequeuePublishedSince(ctx, sqlcdb.RequeuePublishedSinceParams{
				Since:  last.SeenAt.Add(-margin),
				Reason: fmt.Sprintf("the broker lost it (%s, now %s); sent again", last.Incarnation, incarnation),
			})
			if err != nil {
				return err
			}
		}
		return q.RecordOutboxBroker(ctx, incarnation)
	})
	if err != nil {
		return 0, classify("resend lost events", err)
	}
	return int(requeued), nil
}
