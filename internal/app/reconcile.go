package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	Live  ports.LiveEvents
	// Nodes tells which API nodes died holding accepted orders (DeadNodes).
	Nodes ports.Nodes
	// Stock rebuilds inventories the store rolled back (RolledBack).
	Stock Stock
	// Write writes the orders of stranded tasks (Stranded).
	Write WriteOrderHandler
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

// DeadNodes queues, at once, the accepted orders of API nodes that died before queueing them
// (their lease ran out), instead of waiting for Grace; then forgets those nodes. It is cheap
// when no node died: one look at the leases.
func (h ReconcileHandler) DeadNodes(ctx context.Context) (requeued int, err error) {
	dead, err := h.Nodes.Dead(ctx)
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	isDead := make(map[string]bool, len(dead))
	for _, n := range dead {
		isDead[n] = true
	}
	now := h.Now()
	refs, err := h.Sales.LiveSales(ctx, now.Add(-h.Horizon))
	if err != nil {
		return 0, fmt.Errorf("reconcile dead nodes: %w", err)
	}
	for _, ref := range refs {
		awaited, err := h.Inventory.AwaitedReservations(ctx, ref.TenantID, ref.SaleID, now, 0)
		if err != nil {
			return requeued, fmt.Errorf("reconcile dead nodes: %w", err)
		}
		for _, r := range awaited {
			if !isDead[r.Node] {
				continue
			}
			switch err := h.Queue.EnqueueOrder(ctx, r); {
			case err == nil:
				requeued++
			case !errors.Is(err, ports.ErrAlreadyQueued):
				return requeued, fmt.Errorf("reconcile dead nodes: queue order %s: %w", r.OrderID, err)
			}
		}
	}
	for _, n := range dead {
		if err := h.Nodes.Forget(ctx, n); err != nil {
			return requeued, err
		}
		h.Log.WarnContext(ctx, "API node died holding accepted orders; they are queued", "node", n, "requeued", requeued)
	}
	return requeued, nil
}

// RolledBack rebuilds, within seconds, the inventory of live sales the store rolled back
// (Stock.Check): until then their purchases wait, rather than sell again the stock of orders
// PostgreSQL has. It is cheap when nothing rolled back: per live sale, one read of the inventory
// and one index probe in PostgreSQL.
func (h ReconcileHandler) RolledBack(ctx context.Context) (restored int, err error) {
	return h.Stock.Check(ctx, h.Now().Add(-h.Horizon))
}

// Transfers finishes the moves of stock between the shards of live sharded sales that were
// cut short (ports.InventoryStore.SettleTransfers: the purchase that moved the stock died
// between its two halves). Until then the units are in no shard: the sale would answer sold
// out a little early. It costs nothing in Redis for a sale in one shard.
func (h ReconcileHandler) Transfers(ctx context.Context) (settled int, err error) {
	refs, err := h.Sales.LiveSales(ctx, h.Now().Add(-h.Horizon))
	if err != nil {
		return 0, fmt.Errorf("reconcile transfers: %w", err)
	}
	var errs []error
	for _, ref := range refs {
		n, err := h.Inventory.SettleTransfers(ctx, ref.TenantID, ref.SaleID)
		settled += n
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile transfers of sale %s: %w", ref.SaleID, err))
		}
	}
	if settled > 0 {
		h.Log.WarnContext(ctx, "moves of stock between a sale's shards were cut short: finished", "transfers", settled)
	}
	return settled, errors.Join(errs...)
}

// Stranded writes, at once, the orders of tasks the queue holds as running although no worker
// holds them (ports.OrderQueue.StrandedOrders: a worker died, or a Redis failover lost the end
// of a task), instead of leaving them to the queue, which runs them again only minutes later.
// Writing is idempotent: when the queue runs the task again, it finds the order written. It is
// cheap when nothing is stranded: one read of the queue's leases.
func (h ReconcileHandler) Stranded(ctx context.Context) (written int, err error) {
	stranded, err := h.Queue.StrandedOrders(ctx, h.Batch)
	if err != nil || len(stranded) == 0 {
		return 0, err
	}
	byTenant := map[uuid.UUID][]uuid.UUID{}
	for _, r := range stranded {
		byTenant[r.TenantID] = append(byTenant[r.TenantID], r.OrderID)
	}
	durable := map[uuid.UUID]bool{}
	for tenant, ids := range byTenant {
		got, err := h.Orders.ConfirmedOrderIDs(ctx, tenant, ids)
		if err != nil {
			return 0, fmt.Errorf("reconcile stranded tasks: %w", err)
		}
		maps.Copy(durable, got)
	}
	var errs []error
	for _, r := range stranded {
		if durable[r.OrderID] {
			continue // written already; the queue ends the task when it runs it again
		}
		if err := h.Write.Handle(ctx, WriteOrder{Reservation: r, Attempt: 1}); err != nil {
			errs = append(errs, err)
			continue
		}
		written++
		h.Log.WarnContext(ctx, "order task stranded (no worker held it): the order is written", "order_id", r.OrderID)
	}
	return written, errors.Join(errs...)
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
	rel, err := ReleaseOrder(ctx, h.Log, h.Inventory, h.Orders, h.Live, r)
	if rel.Released {
		rep.Released++
	}
	return err
}
