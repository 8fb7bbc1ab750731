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

// GetOrderHandler reads one order: fresh from PostgreSQL once durable, from the reservation
// while pending (or failed before PostgreSQL could record it).
type GetOrderHandler struct {
	Sales     ports.SaleRepository
	Orders    ports.OrderRepository
	Inventory ports.InventoryStore
	Now       func() time.Time
	// Horizon is how long after its end a sale's reservations are still searched.
	Horizon time.Duration
}

// Handle returns the order if p may see it, else domain.ErrOrderNotFound.
func (h GetOrderHandler) Handle(ctx context.Context, p domain.Principal, orderID uuid.UUID) (domain.Order, error) {
	o, err := h.Orders.Order(ctx, p.TenantID, orderID)
	switch {
	case err == nil:
	case errors.Is(err, domain.ErrOrderNotFound):
		if o, err = h.pending(ctx, p.TenantID, orderID); err != nil {
			return domain.Order{}, err
		}
	default:
		return domain.Order{}, fmt.Errorf("get order: %w", err)
	}
	if !o.VisibleTo(p) {
		return domain.Order{}, domain.ErrOrderNotFound
	}
	return o, nil
}

func (h GetOrderHandler) pending(ctx context.Context, tenantID, orderID uuid.UUID) (domain.Order, error) {
	saleIDs, err := h.Sales.TenantLiveSaleIDs(ctx, tenantID, h.Now().Add(-h.Horizon))
	if err != nil {
		return domain.Order{}, fmt.Errorf("get order: %w", err)
	}
	r, ok, err := h.Inventory.FindReservation(ctx, tenantID, saleIDs, orderID)
	if err != nil {
		return domain.Order{}, fmt.Errorf("get order: %w", err)
	}
	if !ok {
		return domain.Order{}, domain.ErrOrderNotFound
	}
	if r.Status == domain.OrderConfirmed {
		// The worker marks a reservation confirmed after the order's commit: it was committed
		// after PostgreSQL was read above (a page polling its pending order saw a 404 there), so
		// read it again. Confirmed in Redis but not in PostgreSQL cannot last: report what is
		// durable.
		o, err := h.Orders.Order(ctx, tenantID, orderID)
		if err != nil && !errors.Is(err, domain.ErrOrderNotFound) {
			return domain.Order{}, fmt.Errorf("get order: %w", err)
		}
		return o, err
	}
	return r.Order(), nil
}

// ListOrders pages through the caller's orders.
type ListOrders struct {
	Principal domain.Principal
	After     *ports.OrderCursor
	Limit     int
}

// OrderPage is one page of orders and where the next starts.
type OrderPage struct {
	Orders []domain.Order
	Next   *ports.OrderCursor
}

// ListOrdersHandler handles ListOrders.
type ListOrdersHandler struct {
	Orders ports.OrderRepository
}

// Handle reads one page more than asked to learn whether another page follows.
func (h ListOrdersHandler) Handle(ctx context.Context, q ListOrders) (OrderPage, error) {
	if q.Limit < 1 {
		return OrderPage{}, domain.ErrInvalidRequest.WithDetail("limit must be at least 1")
	}
	orders, err := h.Orders.ListOrders(ctx, q.Principal.TenantID, q.Principal.UserID, q.After, q.Limit+1)
	if err != nil {
		return OrderPage{}, fmt.Errorf("list orders: %w", err)
	}
	page := OrderPage{Orders: orders}
	if len(orders) > q.Limit {
		page.Orders = orders[:q.Limit]
		last := page.Orders[q.Limit-1]
		page.Next = &ports.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// DeadLettersHandler lists a tenant's dead-lettered orders.
type DeadLettersHandler struct {
	Queue ports.OrderQueue
}

// Handle lists for an admin.
func (h DeadLettersHandler) Handle(ctx context.Context, p domain.Principal, limit int) ([]domain.DeadLetter, error) {
	if !p.IsAdmin() {
		return nil, domain.ErrForbidden
	}
	return h.Queue.DeadLetters(ctx, p.TenantID, limit)
}

// RetryDeadLetterHandler runs a dead-lettered order again.
type RetryDeadLetterHandler struct {
	Inventory ports.InventoryStore
	Queue     ports.OrderQueue
	Log       *slog.Logger
	Live      ports.LiveEvents
}

// Handle takes the order's stock again (it was given back when the order failed) and moves its
// task back to the queue. It fails like a purchase if the stock or allowance is gone.
func (h RetryDeadLetterHandler) Handle(ctx context.Context, p domain.Principal, orderID uuid.UUID) (domain.Order, error) {
	if !p.IsAdmin() {
		return domain.Order{}, domain.ErrForbidden
	}
	dl, err := h.Queue.DeadLetter(ctx, orderID)
	if err != nil {
		return domain.Order{}, err
	}
	if dl.Reservation.TenantID != p.TenantID {
		return domain.Order{}, domain.ErrOrderNotFound
	}
	r, err := h.Inventory.Rereserve(ctx, dl.Reservation)
	if err != nil {
		return domain.Order{}, err
	}
	h.Live.StockChanged(r.TenantID, r.SaleID)
	if err := h.Queue.RunDeadLetter(ctx, orderID); err != nil {
		// Stock is held and the reservation is awaited again: the reconciler settles it.
		return domain.Order{}, fmt.Errorf("retry dead letter %s: %w", orderID, err)
	}
	return r.Order(), nil
}
