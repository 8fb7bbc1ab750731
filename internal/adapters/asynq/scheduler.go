package asynq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Sale event tasks fire sale:started and sale:ended at a sale's times.
const (
	TypeSaleStart = "sale:start"
	TypeSaleEnd   = "sale:end"
)

type saleEventPayload struct {
	TenantID uuid.UUID `json:"tenantId"`
	SaleID   uuid.UUID `json:"saleId"`
	At       time.Time `json:"at"`
}

// Scheduler implements ports.SaleScheduler with Asynq tasks processed at the sale's times. The
// task id names the sale, the event and the time, so however many nodes schedule a sale, each
// event fires once; a sale moved later gets new ids, and the old tasks find themselves stale.
type Scheduler struct {
	client *asynq.Client
	queue  string
}

// NewScheduler uses rdb and the order queue.
func NewScheduler(rdb goredis.UniversalClient, queue string) *Scheduler {
	return &Scheduler{client: asynq.NewClientFromRedisClient(rdb), queue: queue}
}

var _ ports.SaleScheduler = (*Scheduler)(nil)

// ScheduleSale implements ports.SaleScheduler.
func (s *Scheduler) ScheduleSale(ctx context.Context, sale domain.Sale) error {
	for _, ev := range []struct {
		typ string
		at  time.Time
	}{{TypeSaleStart, sale.StartsAt}, {TypeSaleEnd, sale.EndsAt}} {
		payload, _ := json.Marshal(saleEventPayload{TenantID: sale.TenantID, SaleID: sale.ID, At: ev.at})
		id := fmt.Sprintf("%s:%s:%d", ev.typ, sale.ID, ev.at.UnixMilli())
		// Asynq keeps due times in whole seconds (rounded down): round up, or the event fires
		// up to a second early. A done task is kept (Retention) until a day after the sale ends,
		// so that scheduling the sale again (any update of its times) finds the id taken instead
		// of firing an event that already fired.
		processAt := ev.at.Truncate(time.Second)
		if processAt.Before(ev.at) {
			processAt = processAt.Add(time.Second)
		}
		_, err := s.client.EnqueueContext(ctx, asynq.NewTask(ev.typ, payload),
			asynq.TaskID(id), asynq.Queue(s.queue), asynq.ProcessAt(processAt), asynq.MaxRetry(5),
			asynq.Retention(sale.EndsAt.Sub(ev.at)+24*time.Hour))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("schedule %s: %w", ev.typ, err)
		}
	}
	return nil
}

func saleEventHandler(kind app.SaleEventKind, h app.FireSaleEventHandler) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p saleEventPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("decode %s: %v: %w", t.Type(), err, asynq.SkipRetry)
		}
		_, err := h.Handle(ctx, app.FireSaleEvent{TenantID: p.TenantID, SaleID: p.SaleID, Kind: kind, At: p.At})
		if errors.Is(err, domain.ErrSaleNotFound) {
			return fmt.Errorf("%s: %w: %w", t.Type(), err, asynq.SkipRetry)
		}
		return err
	}
}
