package domain

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Topics and event types published to Kafka.
const (
	TopicOrderConfirmed    = "order.confirmed"
	TopicOrderConfirmedDLQ = "order.confirmed.dlq"
	EventOrderConfirmed    = "order.confirmed"
)

// eventNamespace makes event ids deterministic: the same fact always has the same id, so a
// redelivered task cannot publish it twice under two ids.
var eventNamespace = uuid.MustParse("6f1c1b7e-3a51-4d53-9c61-8e7e1f0a2b44")

// Event is a fact to publish, as stored in the outbox.
type Event struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Topic     string
	Key       string
	Type      string
	Payload   []byte
	CreatedAt time.Time
	// TraceParent is the W3C traceparent of the work that produced the event, stored with it
	// by the outbox and sent with it to the broker, so consumers continue that trace; empty when
	// it was not traced.
	TraceParent string
}

// OrderConfirmedV1 is the order.confirmed payload (version 1), documented in asyncapi/flashsale.yaml.
type OrderConfirmedV1 struct {
	EventID        uuid.UUID `json:"eventId"`
	Type           string    `json:"type"`
	Version        int       `json:"version"`
	OccurredAt     time.Time `json:"occurredAt"`
	TenantID       uuid.UUID `json:"tenantId"`
	OrderID        uuid.UUID `json:"orderId"`
	SaleID         uuid.UUID `json:"saleId"`
	UserID         uuid.UUID `json:"userId"`
	Quantity       int       `json:"quantity"`
	UnitPriceCents int64     `json:"unitPriceCents"`
	AmountCents    int64     `json:"amountCents"`
	Currency       string    `json:"currency"`
	OrderedAt      time.Time `json:"orderedAt"`
}

// OrderConfirmedEvent is the event of a confirmed order, keyed by order id.
func OrderConfirmedEvent(o Order, at time.Time) Event {
	id := uuid.NewSHA1(eventNamespace, []byte(EventOrderConfirmed+":"+o.ID.String()))
	payload, _ := json.Marshal(OrderConfirmedV1{ // plain values: cannot fail
		EventID: id, Type: EventOrderConfirmed, Version: 1, OccurredAt: at, TenantID: o.TenantID,
		OrderID: o.ID, SaleID: o.SaleID, UserID: o.UserID, Quantity: o.Quantity,
		UnitPriceCents: o.UnitPriceCents, AmountCents: o.AmountCents, Currency: o.Currency, OrderedAt: o.CreatedAt,
	})
	return Event{
		ID: id, TenantID: o.TenantID, Topic: TopicOrderConfirmed, Key: o.ID.String(),
		Type: EventOrderConfirmed, Payload: payload, CreatedAt: at,
	}
}

// DecodeOrderConfirmed parses and checks an order.confirmed payload; a payload that is not one
// is a poison message, wrapped in ErrPermanent.
func DecodeOrderConfirmed(b []byte) (OrderConfirmedV1, error) {
	var e OrderConfirmedV1
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode %s: %v: %w", EventOrderConfirmed, err, ErrPermanent)
	}
	if e.Type != EventOrderConfirmed || e.Version != 1 || e.EventID == uuid.Nil || e.OrderID == uuid.Nil ||
		e.SaleID == uuid.Nil || e.TenantID == uuid.Nil || e.UserID == uuid.Nil || e.Quantity < 1 {
		return e, fmt.Errorf("decode %s: not a valid version 1 event: %w", EventOrderConfirmed, ErrPermanent)
	}
	return e, nil
}

// SaleStats are a sale's figures as the analytics consumer keeps them.
type SaleStats struct {
	SaleID       uuid.UUID
	Orders       int
	Units        int
	RevenueCents int64
	Currency     string
	FirstOrderAt *time.Time
	LastOrderAt  *time.Time
}

// Mail is a message to one recipient.
type Mail struct {
	To      string
	Subject string
	Text    string
	// ID is unique per mail (the event that caused it), for de-duplication downstream.
	ID string
}
