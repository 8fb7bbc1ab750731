package asynq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/spans"
)

// TypeOrderCreate is the task that writes an accepted order to PostgreSQL.
const TypeOrderCreate = "order:create"

// orderCreatePayload is the task's JSON payload: the whole reservation, so the worker needs
// nothing else to write the order.
type orderCreatePayload struct {
	OrderID        uuid.UUID `json:"orderId"`
	TenantID       uuid.UUID `json:"tenantId"`
	SaleID         uuid.UUID `json:"saleId"`
	UserID         uuid.UUID `json:"userId"`
	Quantity       int       `json:"quantity"`
	IdempotencyKey string    `json:"idempotencyKey"`
	UnitPriceCents int64     `json:"unitPriceCents"`
	Currency       string    `json:"currency"`
	CreatedAt      time.Time `json:"createdAt"`
	// TraceParent is the W3C traceparent of the enqueue, so the worker's write continues the
	// purchase's trace (absent when it was not traced).
	TraceParent string `json:"traceparent,omitempty"`
}

// NewOrderCreateTask builds the task of a reservation; its id is the order id, so the queue
// holds at most one task per order. The task carries the trace of ctx, if any.
func NewOrderCreateTask(ctx context.Context, r domain.Reservation, queue string, maxRetry int) (*asynq.Task, error) {
	payload, err := json.Marshal(orderCreatePayload{
		OrderID: r.OrderID, TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID, Quantity: r.Quantity,
		IdempotencyKey: r.IdempotencyKey, UnitPriceCents: r.UnitPriceCents, Currency: r.Currency, CreatedAt: r.CreatedAt,
		TraceParent: spans.TraceParent(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", TypeOrderCreate, err)
	}
	return asynq.NewTask(TypeOrderCreate, payload,
		asynq.TaskID(r.OrderID.String()), asynq.Queue(queue), asynq.MaxRetry(maxRetry)), nil
}

func decodeOrderCreate(payload []byte) (domain.Reservation, error) {
	r, _, err := decodeOrderCreateTraced(payload)
	return r, err
}

// decodeOrderCreateTraced also returns the traceparent the task carries ("" if none).
func decodeOrderCreateTraced(payload []byte) (domain.Reservation, string, error) {
	var p orderCreatePayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return domain.Reservation{}, "", fmt.Errorf("decode %s payload: %w", TypeOrderCreate, err)
	}
	return domain.Reservation{
		OrderID: p.OrderID, TenantID: p.TenantID, SaleID: p.SaleID, UserID: p.UserID, Quantity: p.Quantity,
		IdempotencyKey: p.IdempotencyKey, UnitPriceCents: p.UnitPriceCents, Currency: p.Currency,
		CreatedAt: p.CreatedAt, Status: domain.OrderPending,
	}, p.TraceParent, nil
}

// QueueConfig names the queue.
type QueueConfig struct {
	// Queue is the Asynq queue name (ORDER_QUEUE).
	Queue string
}

// Asynq's leases (its internal/rdb): a task a worker takes is leased for leaseDuration, and the
// worker's heartbeat, every heartbeatEvery, renews the leases of the tasks it still runs. The
// lease scores are Unix seconds in the queue's lease sorted set.
const (
	leaseDuration  = 30 * time.Second
	heartbeatEvery = 5 * time.Second
	// strandedAfter is how long a lease goes unrenewed before its task counts as stranded:
	// two heartbeats missed.
	strandedAfter = 2 * heartbeatEvery
)

func leaseKey(queue string) string { return "asynq:{" + queue + "}:lease" }

// orderRetries is the Asynq retry limit of an order task: in effect none. The handler decides
// when an order is given up (app.WriteOrderHandler: ORDER_ATTEMPTS for a permanent error,
// ORDER_RETRY_BUDGET for an outage) and then ends the task itself, once the order's failure is
// recorded; Asynq never archives an order behind its back.
const orderRetries = 1 << 20

// Queue implements ports.OrderQueue.
type Queue struct {
	rdb       goredis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	cfg       QueueConfig
}

// NewQueue uses rdb for both enqueueing and inspection.
func NewQueue(rdb goredis.UniversalClient, cfg QueueConfig) *Queue {
	return &Queue{rdb: rdb, client: asynq.NewClientFromRedisClient(rdb), inspector: asynq.NewInspectorFromRedisClient(rdb), cfg: cfg}
}

var _ ports.OrderQueue = (*Queue)(nil)

// EnqueueOrder implements ports.OrderQueue.
func (q *Queue) EnqueueOrder(ctx context.Context, r domain.Reservation) (err error) {
	ctx, span := tracer().Start(ctx, "asynq.enqueue "+TypeOrderCreate, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("flashsale.order_id", r.OrderID.String()),
			attribute.String("messaging.destination.name", q.cfg.Queue)))
	defer func() {
		if errors.Is(err, ports.ErrAlreadyQueued) {
			spans.End(span, nil)
			return
		}
		spans.End(span, err)
	}()
	task, err := NewOrderCreateTask(ctx, r, q.cfg.Queue, orderRetries)
	if err != nil {
		return err
	}
	_, err = q.client.EnqueueContext(ctx, task)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return ports.ErrAlreadyQueued
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", TypeOrderCreate, err)
	}
	return nil
}

// QueueStats is a queue as the inspector sees it.
type QueueStats struct {
	Queue                                       string
	Pending, Active, Scheduled, Retry, Archived int
	// Latency is how long the oldest pending task has waited.
	Latency time.Duration
}

// Stats reads the queues named that exist (a queue is made by its first task).
func (q *Queue) Stats(queues ...string) ([]QueueStats, error) {
	exist, err := q.inspector.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []QueueStats
	for _, name := range queues {
		if !slices.Contains(exist, name) {
			out = append(out, QueueStats{Queue: name})
			continue
		}
		info, err := q.inspector.GetQueueInfo(name)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", name, err)
		}
		out = append(out, QueueStats{Queue: name, Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled,
			Retry: info.Retry, Archived: info.Archived, Latency: info.Latency})
	}
	return out, nil
}

// OrderTaskState implements ports.OrderQueue.
func (q *Queue) OrderTaskState(_ context.Context, orderID uuid.UUID) (ports.TaskState, error) {
	info, err := q.inspector.GetTaskInfo(q.cfg.Queue, orderID.String())
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return ports.TaskAbsent, nil
	case err != nil:
		return "", fmt.Errorf("task state: %w", err)
	case info.State == asynq.TaskStateArchived:
		return ports.TaskArchived, nil
	case info.State == asynq.TaskStateCompleted:
		return ports.TaskAbsent, nil
	default:
		return ports.TaskQueued, nil
	}
}

// StrandedOrders implements ports.OrderQueue. Asynq itself runs such a task again only once
// its lease expired 30 s ago, checked every minute: up to two minutes after a failover.
func (q *Queue) StrandedOrders(ctx context.Context, limit int) ([]domain.Reservation, error) {
	renewedBefore := time.Now().Add(leaseDuration - strandedAfter)
	ids, err := q.rdb.ZRangeByScore(ctx, leaseKey(q.cfg.Queue), &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(renewedBefore.Unix(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("stranded orders: %w", err)
	}
	out := make([]domain.Reservation, 0, len(ids))
	for _, id := range ids {
		info, err := q.inspector.GetTaskInfo(q.cfg.Queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			continue // ended meanwhile
		case err != nil:
			return out, fmt.Errorf("stranded orders: %w", err)
		case info.State != asynq.TaskStateActive || info.Type != TypeOrderCreate:
			continue
		}
		r, err := decodeOrderCreate(info.Payload)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// DeadLetters implements ports.OrderQueue; it reads archived tasks page by page until it has
// limit of the tenant's.
func (q *Queue) DeadLetters(_ context.Context, tenantID uuid.UUID, limit int) ([]domain.DeadLetter, error) {
	const pageSize, maxPages = 200, 50
	out := []domain.DeadLetter{}
	for page := 1; page <= maxPages && len(out) < limit; page++ {
		infos, err := q.inspector.ListArchivedTasks(q.cfg.Queue, asynq.PageSize(pageSize), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		for _, info := range infos {
			if info.Type != TypeOrderCreate {
				continue
			}
			dl, err := toDeadLetter(info)
			if err != nil {
				return nil, err
			}
			if dl.Reservation.TenantID == tenantID && len(out) < limit {
				out = append(out, dl)
			}
		}
		if len(infos) < pageSize {
			break
		}
	}
	return out, nil
}

// DeadLetter implements ports.OrderQueue.
func (q *Queue) DeadLetter(_ context.Context, orderID uuid.UUID) (domain.DeadLetter, error) {
	info, err := q.inspector.GetTaskInfo(q.cfg.Queue, orderID.String())
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) ||
		(err == nil && (info.State != asynq.TaskStateArchived || info.Type != TypeOrderCreate)) {
		return domain.DeadLetter{}, domain.ErrOrderNotFound.WithDetail("no dead-lettered order with this id")
	}
	if err != nil {
		return domain.DeadLetter{}, fmt.Errorf("dead letter: %w", err)
	}
	return toDeadLetter(info)
}

// RunDeadLetter implements ports.OrderQueue.
func (q *Queue) RunDeadLetter(_ context.Context, orderID uuid.UUID) error {
	if err := q.inspector.RunTask(q.cfg.Queue, orderID.String()); err != nil {
		return fmt.Errorf("run dead letter: %w", err)
	}
	return nil
}

func toDeadLetter(info *asynq.TaskInfo) (domain.DeadLetter, error) {
	r, err := decodeOrderCreate(info.Payload)
	if err != nil {
		return domain.DeadLetter{}, err
	}
	r.Status = domain.OrderFailed
	return domain.DeadLetter{Reservation: r, LastError: info.LastErr, FailedAt: info.LastFailedAt, Attempts: info.Retried + 1}, nil
}
