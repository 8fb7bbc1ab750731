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

// WriteOrder makes a reservation durable: one attempt of the queue's order task.
type WriteOrder struct {
	Reservation domain.Reservation
	// FinalAttempt: if this attempt fails the task is dead-lettered.
	FinalAttempt bool
}

// WriteOrderHandler handles WriteOrder in the worker.
type WriteOrderHandler struct {
	Orders    ports.OrderRepository
	Inventory ports.InventoryStore
	Now       func() time.Time
	Log       *slog.Logger
	// Broadcaster tells the buyer's live connections; Feed reports stock given back (optional).
	Broadcaster ports.Broadcaster
	Feed        *LiveFeed
}

// Handle writes the order to PostgreSQL, idempotently. When the order can never be written, or
// this was the last attempt, the reservation is released: the order becomes failed and its stock
// and the buyer's allowance go back on sale. An error wrapping domain.ErrPermanent tells the queue
// not to retry.
func (h WriteOrderHandler) Handle(ctx context.Context, cmd WriteOrder) error {
	r := cmd.Reservation
	current, ok, err := h.Inventory.Reservation(ctx, r.TenantID, r.SaleID, r.OrderID)
	if err != nil {
		return h.fail(ctx, cmd, fmt.Errorf("write order: read reservation: %w", err))
	}
	if ok {
		if current.Status == domain.OrderFailed {
			return fmt.Errorf("write order %s: reservation was released: %w", r.OrderID, domain.ErrPermanent)
		}
		r = current // the store's copy is authoritative (price, time)
	}
	// No reservation in Redis means Redis lost it; the order was accepted, so it is written.
	o := r.Order()
	o.Status = domain.OrderConfirmed
	now := h.Now().UTC()
	o.ConfirmedAt = &now
	// The order.confirmed event commits with the order, and only the first time it is written.
	if _, err := h.Orders.SaveOrder(ctx, o, domain.OrderConfirmedEvent(o, now)); err != nil {
		return h.fail(ctx, cmd, fmt.Errorf("write order %s: %w", r.OrderID, err))
	}
	if err := h.Inventory.MarkConfirmed(ctx, r); err != nil {
		// Durable already; the reconciler clears what is left.
		h.Log.WarnContext(ctx, "order durable but still marked awaited", "order_id", r.OrderID, "err", err)
	}
	buyer := o.UserID
	broadcast(ctx, h.Broadcaster, h.Log, domain.LiveEvent{Type: domain.LiveOrderConfirmed, TenantID: o.TenantID,
		SaleID: o.SaleID, UserID: &buyer, TS: now, Data: domain.OrderConfirmedData{
			OrderID: o.ID, Quantity: o.Quantity, Status: o.Status, AmountCents: o.AmountCents, Currency: o.Currency,
		}})
	return nil
}

func (h WriteOrderHandler) fail(ctx context.Context, cmd WriteOrder, cause error) error {
	if !cmd.FinalAttempt && !errors.Is(cause, domain.ErrPermanent) {
		return cause
	}
	if _, err := ReleaseOrder(ctx, h.Log, h.Inventory, h.Orders, h.Feed, cmd.Reservation); err != nil {
		h.Log.ErrorContext(ctx, "dead-lettered order not released yet; the reconciler retries",
			"order_id", cmd.Reservation.OrderID, "err", err)
	}
	return cause
}

// ReleaseOrder gives a failed order's stock back and records the failure in PostgreSQL when it
// can (Redis holds the failed state either way, so a failed record is only logged). An attempt that failed on its way back (the
// commit landed, the answer was lost) may have written the order after all: PostgreSQL is asked
// first, and if it cannot answer nothing is released (the reconciler asks again later).
func ReleaseOrder(ctx context.Context, log *slog.Logger, inventory ports.InventoryStore, orders ports.OrderRepository,
	feed *LiveFeed, r domain.Reservation) (released bool, err error) {
	confirmed, err := orders.ConfirmedOrderIDs(ctx, r.TenantID, []uuid.UUID{r.OrderID})
	if err != nil {
		return false, fmt.Errorf("release order %s: %w", r.OrderID, err)
	}
	if confirmed[r.OrderID] {
		return false, inventory.MarkConfirmed(ctx, r)
	}
	if released, err = inventory.Release(ctx, r); err != nil {
		return false, fmt.Errorf("release order %s: %w", r.OrderID, err)
	}
	if released {
		feed.InventoryChanged(r.TenantID, r.SaleID)
	}
	o := r.Order()
	o.Status = domain.OrderFailed
	// Saved with no event: a failed order is not published.
	if _, err := orders.SaveOrder(ctx, o); err != nil && !errors.Is(err, domain.ErrPermanent) {
		log.WarnContext(ctx, "order failed and its stock given back; the failure is not in PostgreSQL",
			"order_id", r.OrderID, "err", err)
	}
	return released, nil
}
