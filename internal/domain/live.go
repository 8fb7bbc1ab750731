package domain

import (
	"time"

	"github.com/google/uuid"
)

// Live event types pushed to connected clients.
const (
	LiveSaleStarted      = "sale:started"
	LiveInventoryUpdated = "inventory:updated"
	LiveOrderConfirmed   = "order:confirmed"
	LiveSaleEnded        = "sale:ended"
)

// Snapshot reports whether events of type state the whole of something (a sale's stock, a
// waiting room's figures): a client behind on its events needs only the newest of them.
func Snapshot(eventType string) bool {
	return eventType == LiveInventoryUpdated || eventType == LiveQueuePosition
}

// LiveEvent is pushed to clients over WebSocket: {type, saleId, data, ts} on the wire. It is
// public to the tenant's clients unless UserID is set: then only that user's connections get it.
type LiveEvent struct {
	Type     string
	TenantID uuid.UUID
	SaleID   uuid.UUID
	UserID   *uuid.UUID
	Data     any
	TS       time.Time
}

// InventoryData is the data of inventory:updated.
type InventoryData struct {
	TotalStock int        `json:"totalStock"`
	Remaining  int        `json:"remaining"`
	Status     SaleStatus `json:"status"`
}

// SaleTimesData is the data of sale:started and sale:ended.
type SaleTimesData struct {
	Name     string     `json:"name"`
	StartsAt time.Time  `json:"startsAt"`
	EndsAt   time.Time  `json:"endsAt"`
	Status   SaleStatus `json:"status"`
	// Reason says why a sale ended: "ended" (its end time) or "sold_out".
	Reason string `json:"reason,omitempty"`
}

// OrderConfirmedData is the data of order:confirmed (sent to the buyer only).
type OrderConfirmedData struct {
	OrderID     uuid.UUID   `json:"orderId"`
	Quantity    int         `json:"quantity"`
	Status      OrderStatus `json:"status"`
	AmountCents int64       `json:"amountCents"`
	Currency    string      `json:"currency"`
}
