package asynq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/spans"
)

// WorkerConfig tunes the order worker.
type WorkerConfig struct {
	Queue string
	// SaleEventsQueue holds the scheduled sale:start and sale:end tasks.
	SaleEventsQueue string
	// Concurrency bounds the orders written at once: the rate PostgreSQL sees. Keep it at or
	// below the pool size.
	Concurrency int
	// RetryBase is the first retry delay; each next one doubles, with jitter, up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// PollInterval is how often an idle worker looks for tasks.
	PollInterval time.Duration
	// ShutdownTimeout is how long in-flight tasks may finish before they are handed back.
	ShutdownTimeout time.Duration
	// Observer, if set, counts the order tasks this worker ran, by result.
	Observer Observer
}

// Results of an order:create task, as Observer.OrderTask counts them.
const (
	// TaskWritten: the order is in PostgreSQL (written now, or found written).
	TaskWritten = "written"
	// TaskRetried: a failure the queue tries again later.
	TaskRetried = "retried"
	// TaskGivenUp: PostgreSQL refused the order itself, or the task could not be read; it goes to
	// the dead letters.
	TaskGivenUp = "given_up"
)

// Observer is told what operators watch of the worker (the metrics adapter implements it).
type Observer interface {
	// OrderTask counts one run of an order:create task by result (the Task* constants).
	OrderTask(result string)
	// OrderWritten observes the time from a purchase's acceptance to its order written.
	OrderWritten(acceptedToDurable time.Duration)
}

// Worker runs order:create tasks.
type Worker struct {
	srv *asynq.Server
	mux *asynq.ServeMux
}

// NewWorker builds a worker that writes orders through h and fires scheduled sale events
// through events.
func NewWorker(rdb goredis.UniversalClient, cfg WorkerConfig, h app.WriteOrderHandler, events app.FireSaleEventHandler, log *slog.Logger) *Worker {
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{cfg.Queue: 9, cfg.SaleEventsQueue: 1},
		RetryDelayFunc:           exponentialBackoff(cfg.RetryBase, cfg.RetryMax),
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: time.Second,
		Logger:                   slogLogger{log},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			id, _ := asynq.GetTaskID(ctx)
			if t.Type() == TypeOrderCreate { // the line names the purchase's trace
				if _, traceParent, derr := decodeOrderCreateTraced(t.Payload()); derr == nil {
					ctx = spans.WithTraceParent(ctx, traceParent)
				}
			}
			log.WarnContext(ctx, "task failed", "type", t.Type(), "task_id", id, "attempt", retried+1,
				"dead_lettered", retried >= maxRetry || errors.Is(err, asynq.SkipRetry), "err", err)
		}),
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeOrderCreate, observed(cfg.Observer, orderCreateHandler(h)))
	mux.HandleFunc(TypeSaleStart, saleEventHandler(app.SaleEventStart, events))
	mux.HandleFunc(TypeSaleEnd, saleEventHandler(app.SaleEventEnd, events))
	return &Worker{srv: srv, mux: mux}
}

func orderCreateHandler(h app.WriteOrderHandler) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) (err error) {
		r, traceParent, err := decodeOrderCreateTraced(t.Payload())
		if err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		retried, _ := asynq.GetRetryCount(ctx)
		// The write continues the trace of the purchase that queued it (each attempt a span).
		ctx, span := tracer().Start(spans.WithTraceParent(ctx, traceParent), "asynq.handle "+TypeOrderCreate,
			trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
				attribute.String("flashsale.order_id", r.OrderID.String()), attribute.Int("flashsale.attempt", retried+1)))
		defer func() { spans.End(span, err) }()
		err = h.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: retried + 1})
		if errors.Is(err, domain.ErrPermanent) {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return err
	}
}

// observed tells obs, if set, how each run of next ended.
func observed(obs Observer, next asynq.HandlerFunc) asynq.HandlerFunc {
	if obs == nil {
		return next
	}
	return func(ctx context.Context, t *asynq.Task) error {
		err := next(ctx, t)
		switch {
		case err == nil:
			obs.OrderTask(TaskWritten)
			if r, derr := decodeOrderCreate(t.Payload()); derr == nil && !r.CreatedAt.IsZero() {
				obs.OrderWritten(time.Since(r.CreatedAt))
			}
		case errors.Is(err, asynq.SkipRetry):
			obs.OrderTask(TaskGivenUp)
		default:
			obs.OrderTask(TaskRetried)
		}
		return err
	}
}

// exponentialBackoff waits base, 2·base, 4·base, ... up to ceiling (±20% jitter).
func exponentialBackoff(base, ceiling time.Duration) asynq.RetryDelayFunc {
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := base << min(n, 20)
		d = min(d, ceiling)
		return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) //nolint:gosec // G404: retry jitter, not a secret
	}
}

// Start begins processing; it returns at once.
func (w *Worker) Start() error { return w.srv.Start(w.mux) }

// Shutdown stops taking tasks, lets running ones finish within the shutdown timeout and hands
// the rest back to the queue.
func (w *Worker) Shutdown() { w.srv.Shutdown() }

// slogLogger routes Asynq's logs to slog.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l slogLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...), "component", "asynq") }
func (l slogLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l slogLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }
func (l slogLogger) Fatal(args ...any) {
	l.log.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}
