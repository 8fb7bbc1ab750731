package domain

import (
	"time"

	"github.com/google/uuid"
)

// OrderStatus is where an order is on its way to PostgreSQL.
type OrderStatus string

const (
	// OrderPending: stock is reserved in Redis and the order is queued, not yet durable.
	OrderPending OrderStatus = "pending"
	// OrderConfirmed: the order is written to PostgreSQL.
	OrderConfirmed OrderStatus = "confirmed"
	// OrderFailed: every attempt to write it failed; it was dead-lettered and its stock given back.
	OrderFailed OrderStatus = "failed"
)

// Reservation is an accepted purchase: stock taken atomically in Redis, the order not yet in
// PostgreSQL. It carries everything the worker needs to write the order.
type Reservation struct {
	OrderID        uuid.UUID
	TenantID       uuid.UUID
	SaleID         uuid.UUID
	UserID         uuid.UUID
	Quantity       int
	IdempotencyKey string
	// UnitPriceCents and Currency are the sale's price when the stock was taken.
	UnitPriceCents int64
	Currency       string
	CreatedAt      time.Time
	Status         OrderStatus
	// Node is the API node that accepted the purchase and queues it; if that node dies first,
	// the reconciler queues what it accepted (see ports.Nodes).
	Node string
	// Seq is the number the inventory store gave the reservation (Inventory.Seq).
	Seq int64
}

// Order is a purchase as the buyer sees it.
type Order struct {
	ID             uuid.UUID
	TenantID       uuid.UUID
	SaleID         uuid.UUID
	UserID         uuid.UUID
	Quantity       int
	IdempotencyKey string
	Status         OrderStatus
	// UnitPriceCents, AmountCents and Currency are fixed when the order becomes durable.
	UnitPriceCents int64
	AmountCents    int64
	Currency       string
	CreatedAt      time.Time
	ConfirmedAt    *time.Time
	// ReservationSeq is its reservation's number (Reservation.Seq), kept with the order so that
	// PostgreSQL knows the inventory store's high-water mark.
	ReservationSeq int64
}

// Order is the pending order the reservation stands for.
func (r Reservation) Order() Order {
	status := r.Status
	if status == "" {
		status = OrderPending
	}
	return Order{
		ID: r.OrderID, TenantID: r.TenantID, SaleID: r.SaleID, UserID: r.UserID,
		Quantity: r.Quantity, IdempotencyKey: r.IdempotencyKey, Status: status, CreatedAt: r.CreatedAt,
		UnitPriceCents: r.UnitPriceCents, AmountCents: r.UnitPriceCents * int64(r.Quantity), Currency: r.Currency,
		ReservationSeq: r.Seq,
	}
}

// VisibleTo reports whether p may see the order: its buyer, or an admin of its tenant.
func (o Order) VisibleTo(p Principal) bool {
	if o.TenantID != p.TenantID {
		return false
	}
	return o.UserID == p.UserID || p.IsAdmin()
}

// DeadLetter is an order whose writing failed every attempt.
type DeadLetter struct {
	Reservation Reservation
	LastError   string
	FailedAt    time.Time
	Attempts    int
}
