package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// ReconcileHandler finds accepted orders that never reached PostgreSQL (a crash between the
// reservation and the queue, a lost task) and puts them back on their way.
type ReconcileHandler struct {
	Sales     ports.SaleRepository
	Orders    ports.OrderRepository
	Inventory ports.InventoryStore
	Queue     ports.OrderQueue
	Now       func() time.Time
	Log       *slog.Logger
	// Grace is how long a reservation may wait for the worker before it is looked at.
	Grace time.Duration
	// Horizon is how long after its end a sale is still swept.
	Horizon time.Duration
	// Batch bounds the reservations handled per sale and pass.
	Batch int
	Feed  *LiveFeed
}

// ReconcileReport counts what one pass did.
type ReconcileReport struct {
	Sales, Requeued, Confirmed, Released int
}

// Handle makes one pass over the live sales. It is safe on many nodes at once: queueing is
// de-duplicated by order id and every step is idempotent.
func (h ReconcileHandler) Handle(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	now := h.Now()
	refs, err := h.Sales.LiveSales(ctx, now.Add(-h.Horizon))
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	var errs []error
	for _, ref := range refs {
		rep.Sales++
		if err := h.sale(ctx, ref, now, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := h.Sales.CloseSales(ctx, now.Add(-h.Horizon)); err != nil {
		errs = append(errs, fmt.Errorf("reconcile: close sales: %w", err))
	}
	return rep, errors.Join(errs...)
}

func (h ReconcileHandler) sale(ctx context.Context, ref ports.SaleRef, now time.Time, rep *ReconcileReport) error {
	awaited, err := h.Inventory.AwaitedReservations(ctx, ref.TenantID, ref.SaleID, now.Add(-h.Grace), h.Batch)
	if err != nil || len(awaited) == 0 {
		return err
	}
	ids := make([]uuid.UUID, len(awaited))
	for i, r := range awaited {
		ids[i] = r.OrderID
	}
	durable, err := h.Orders.ConfirmedOrderIDs(ctx, ref.TenantID, ids)
	if err != nil {
		return fmt.Errorf("reconcile sale %s: %w", ref.SaleID, err)
	}
	for _, r := range awaited {
		if err := h.reservation(ctx, r, durable[r.OrderID], rep); err != nil {
			return fmt.Errorf("reconcile order %s: %w", r.OrderID, err)
		}
	}
	return nil
}

func (h ReconcileHandler) reservation(ctx context.Context, r domain.Reservation, durable bool, rep *ReconcileReport) error {
	if durable {
		rep.Confirmed++
		return h.Inventory.MarkConfirmed(ctx, r)
	}
	err := h.Queue.EnqueueOrder(ctx, r)
	if err == nil {
		rep.Requeued++
		h.Log.InfoContext(ctx, "re-queued an accepted order that never reached the database", "order_id", r.OrderID)
		return nil
	}
	if !errors.Is(err, ports.ErrAlreadyQueued) {
		return err
	}
	state, err := h.Queue.OrderTaskState(ctx, r.OrderID)
	if err != nil || state != ports.TaskArchived {
		return err // still queued or retrying: the worker has it
	}
	// Dead-lettered without being released (the worker died on its last attempt).
	rel, err := ReleaseOrder(ctx, h.Log, h.Inventory, h.Orders, h.Feed, r)
	if rel.Released {
		rep.Released++
	}
	return err
}
