package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/spans"
)

// SaveOrder implements ports.OrderRepository: the order and the events it is given commit
// together, and the events only when the row was inserted or replaced, so a redelivered task
// adds no second event.
func (s *Store) SaveOrder(ctx context.Context, o domain.Order, events ...domain.Event) (inserted bool, err error) {
	ctx, span := tracer().Start(ctx, "postgres.SaveOrder", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("flashsale.order_id", o.ID.String())))
	defer func() { spans.End(span, err) }()
	err = s.inTx(ctx, func(q *sqlcdb.Queries) error {
		var err error
		inserted, err = q.UpsertOrder(ctx, sqlcdb.UpsertOrderParams{
			ID: o.ID, TenantID: o.TenantID, SaleID: o.SaleID, UserID: o.UserID, Quantity: int32(o.Quantity),
			UnitPriceCents: o.UnitPriceCents, AmountCents: o.AmountCents, Currency: o.Currency,
			IdempotencyKey: o.IdempotencyKey, Status: string(o.Status), CreatedAt: o.CreatedAt, ConfirmedAt: o.ConfirmedAt,
			ReservationSeq: o.ReservationSeq,
		})
		if code, constraint := pgCode(err); code == uniqueViolation {
			return fmt.Errorf("%s taken by another order: %w", constraint, domain.ErrPermanent)
		}
		if err != nil { // pgx.ErrNoRows: the row is there unchanged, and so are its events
			return err
		}
		for _, e := range events {
			if err := insertEvent(ctx, q, e); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, pgx.ErrNoRows) { // already there, and not a failure to replace
		return false, nil
	}
	if err != nil {
		return false, classify("save order", err)
	}
	return inserted, nil
}

// Order implements ports.OrderRepository.
func (s *Store) Order(ctx context.Context, tenantID, id uuid.UUID) (domain.Order, error) {
	row, err := s.q.OrderByID(ctx, sqlcdb.OrderByIDParams{TenantID: tenantID, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Order{}, domain.ErrOrderNotFound
	}
	if err != nil {
		return domain.Order{}, classify("read order", err)
	}
	return toDomainOrder(row), nil
}

// ListOrders implements ports.OrderRepository.
func (s *Store) ListOrders(ctx context.Context, tenantID, userID uuid.UUID, after *ports.OrderCursor, limit int) ([]domain.Order, error) {
	var (
		rows []sqlcdb.Order
		err  error
	)
	if after == nil {
		rows, err = s.q.ListUserOrders(ctx, sqlcdb.ListUserOrdersParams{TenantID: tenantID, UserID: userID, Limit: int32(limit)})
	} else {
		rows, err = s.q.ListUserOrdersAfter(ctx, sqlcdb.ListUserOrdersAfterParams{
			TenantID: tenantID, UserID: userID, AfterCreatedAt: after.CreatedAt, AfterID: after.ID, Lim: int32(limit),
		})
	}
	if err != nil {
		return nil, classify("list orders", err)
	}
	orders := make([]domain.Order, len(rows))
	for i, r := range rows {
		orders[i] = toDomainOrder(r)
	}
	return orders, nil
}

// SaleOrders implements ports.OrderRepository.
func (s *Store) SaleOrders(ctx context.Context, tenantID, saleID uuid.UUID) ([]domain.Order, error) {
	rows, err := s.q.SaleOrders(ctx, sqlcdb.SaleOrdersParams{TenantID: tenantID, SaleID: saleID})
	if err != nil {
		return nil, classify("confirmed sale orders", err)
	}
	orders := make([]domain.Order, len(rows))
	for i, r := range rows {
		orders[i] = toDomainOrder(r)
	}
	return orders, nil
}

// ConfirmedOrderIDs implements ports.OrderRepository.
func (s *Store) ConfirmedOrderIDs(ctx context.Context, tenantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	found, err := s.q.ConfirmedOrderIDs(ctx, sqlcdb.ConfirmedOrderIDsParams{TenantID: tenantID, Ids: ids})
	if err != nil {
		return nil, classify("confirmed orders", err)
	}
	m := make(map[uuid.UUID]bool, len(found))
	for _, id := range found {
		m[id] = true
	}
	return m, nil
}

// ReservationHighWaters implements ports.OrderRepository: one index probe for a sale in one
// shard, a scan of the sale's orders for a sharded one.
func (s *Store) ReservationHighWaters(ctx context.Context, tenantID, saleID uuid.UUID, shards int) ([]ports.HighWater, error) {
	var out []ports.HighWater
	if shards <= 1 {
		rows, err := s.q.ReservationHighWater(ctx, sqlcdb.ReservationHighWaterParams{TenantID: tenantID, SaleID: saleID})
		for _, r := range rows {
			out = append(out, ports.HighWater{Seq: r.ReservationSeq, OrderID: r.ID})
		}
		return out, classify("reservation high-water mark", err)
	}
	rows, err := s.q.ShardHighWaters(ctx, sqlcdb.ShardHighWatersParams{TenantID: tenantID, SaleID: saleID, Shards: int64(shards)})
	for _, r := range rows {
		out = append(out, ports.HighWater{Seq: r.ReservationSeq, OrderID: r.ID})
	}
	slices.SortFunc(out, func(a, b ports.HighWater) int { return cmp.Compare(b.Seq, a.Seq) })
	return out, classify("reservation high-water marks", err)
}

func toDomainOrder(r sqlcdb.Order) domain.Order {
	o := domain.Order{
		ID: r.ID, TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID, Quantity: int(r.Quantity),
		IdempotencyKey: r.IdempotencyKey, Status: domain.OrderStatus(r.Status), UnitPriceCents: r.UnitPriceCents,
		AmountCents: r.AmountCents, Currency: r.Currency, CreatedAt: r.CreatedAt.UTC(), ReservationSeq: r.ReservationSeq,
	}
	if r.ConfirmedAt != nil {
		t := r.ConfirmedAt.UTC()
		o.ConfirmedAt = &t
	}
	return o
}
