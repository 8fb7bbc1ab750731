package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/spans"
)

var _ ports.PurchaseStore = (*Inventory)(nil)

// outcomeRecord is a replayable answer as pg_idempotency.outcome stores it.
type outcomeRecord struct {
	Order     *domain.Order `json:"o,omitempty"`
	ErrCode   domain.Code   `json:"e,omitempty"`
	ErrDetail string        `json:"m,omitempty"`
}

// Purchase implements ports.PurchaseStore in one transaction: the key is claimed (pg_idempotency)
// and, if it was free, the stock reserved as Reserve does. A refusal commits the claim, for the
// caller to complete; an unknown sale rolls it back.
func (s *Inventory) Purchase(ctx context.Context, p ports.Purchase) (_ ports.PurchaseOutcome, err error) {
	ctx, span := tracer().Start(ctx, "postgres.Reserve", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("flashsale.order_id", p.Reservation.OrderID.String())))
	defer func() { spans.End(span, err) }()
	return s.purchase(ctx, p)
}

func (s *Inventory) purchase(ctx context.Context, p ports.Purchase) (ports.PurchaseOutcome, error) {
	if !p.Gate.IsZero() {
		return ports.PurchaseOutcome{}, errors.New("purchase: the edge's checks are not taken here (GateInPurchase)")
	}
	if p.Admission {
		return ports.PurchaseOutcome{}, errors.New("purchase: admissions are not spent here (AdmissionInPurchase)")
	}
	var out ports.PurchaseOutcome
	var refused error
	err := s.inTx(ctx, func(q *sqlcdb.Queries) error {
		known, err := claim(ctx, q, p)
		if err != nil || known != nil {
			out.Known = known
			return err
		}
		out.Reserved, err = reserve(ctx, q, p.Reservation)
		if domain.CodeOf(err) != "" && !errors.Is(err, domain.ErrSaleNotFound) {
			refused, err = err, nil // the claim stays, to be completed with the refusal
		}
		return err
	})
	if err != nil {
		return ports.PurchaseOutcome{}, err
	}
	return out, refused
}

// claim takes the key, or returns its live record if it is in use.
func claim(ctx context.Context, q *sqlcdb.Queries, p ports.Purchase) (*ports.IdempotencyRecord, error) {
	_, err := q.PgClaimIdempotencyKey(ctx, sqlcdb.PgClaimIdempotencyKeyParams{
		TenantID: p.Scope.TenantID, UserID: p.Scope.UserID, Key: p.Scope.Key, Fingerprint: p.Fingerprint,
		LeaseSeconds: p.Lease.Seconds(),
	})
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, classify("claim idempotency key", err)
	}
	// ErrNoRows: it expired in between; the caller may retry
	return record(ctx, q, p.Scope)
}

// GateInPurchase implements ports.PurchaseStore: the edge checks sessions and rate limits.
func (s *Inventory) GateInPurchase() bool { return false }

// AdmissionInPurchase implements ports.PurchaseStore: the waiting room spends admissions first.
func (s *Inventory) AdmissionInPurchase() bool { return false }

// Lookup implements ports.PurchaseStore.
func (s *Inventory) Lookup(ctx context.Context, sc ports.IdempotencyScope, _, session uuid.UUID) (ports.IdempotencyRecord, bool, error) {
	if session != uuid.Nil {
		return ports.IdempotencyRecord{}, false, errors.New("look up idempotency key: sessions are not checked here (GateInPurchase)")
	}
	rec, err := record(ctx, s.q, sc)
	if errors.Is(err, pgx.ErrNoRows) {
		return ports.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return ports.IdempotencyRecord{}, false, err
	}
	return *rec, true, nil
}

// record reads the live record of a key in use (pgx.ErrNoRows when it is free).
func record(ctx context.Context, q *sqlcdb.Queries, sc ports.IdempotencyScope) (*ports.IdempotencyRecord, error) {
	row, err := q.PgIdempotencyRecord(ctx, sqlcdb.PgIdempotencyRecordParams{
		TenantID: sc.TenantID, UserID: sc.UserID, Key: sc.Key,
	})
	if err != nil {
		return nil, classify("read idempotency key", err)
	}
	rec := &ports.IdempotencyRecord{Fingerprint: row.Fingerprint, Done: row.Done}
	if len(row.Outcome) > 0 {
		var o outcomeRecord
		if err := json.Unmarshal(row.Outcome, &o); err != nil {
			return nil, fmt.Errorf("decode idempotency record: %w", err)
		}
		rec.Outcome = ports.PlaceOrderOutcome{Order: o.Order, ErrCode: o.ErrCode, ErrDetail: o.ErrDetail}
	}
	return rec, nil
}

// Complete implements ports.PurchaseStore.
func (s *Inventory) Complete(ctx context.Context, sc ports.IdempotencyScope, r ports.IdempotencyRecord, ttl time.Duration) error {
	outcome, err := json.Marshal(outcomeRecord{Order: r.Outcome.Order, ErrCode: r.Outcome.ErrCode, ErrDetail: r.Outcome.ErrDetail})
	if err != nil {
		return fmt.Errorf("encode idempotency record: %w", err)
	}
	return classify("store idempotency record", s.q.PgCompleteIdempotencyKey(ctx, sqlcdb.PgCompleteIdempotencyKeyParams{
		TenantID: sc.TenantID, UserID: sc.UserID, Key: sc.Key, Fingerprint: r.Fingerprint, Outcome: outcome,
		TtlSeconds: ttl.Seconds(),
	}))
}

// Forget implements ports.PurchaseStore.
func (s *Inventory) Forget(ctx context.Context, sc ports.IdempotencyScope) error {
	return classify("forget idempotency key", s.q.PgForgetIdempotencyKey(ctx, sqlcdb.PgForgetIdempotencyKeyParams{
		TenantID: sc.TenantID, UserID: sc.UserID, Key: sc.Key,
	}))
}
