package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// publish sends e; live events are best effort: a missed one is corrected by the next, and
// never fails the operation that caused it.
func publish(ctx context.Context, live ports.LiveEvents, log *slog.Logger, e domain.LiveEvent) {
	if err := live.Publish(ctx, e); err != nil {
		log.WarnContext(ctx, "live event not broadcast", "type", e.Type, "sale_id", e.SaleID, "err", err)
	}
}

func saleTimes(s domain.Sale, now time.Time, remaining int, reason string) domain.SaleTimesData {
	return domain.SaleTimesData{Name: s.Name, StartsAt: s.StartsAt, EndsAt: s.EndsAt, Status: s.Status(now, remaining), Reason: reason}
}

// SaleEventKind is which end of a sale's window a scheduled event marks.
type SaleEventKind string

const (
	SaleEventStart SaleEventKind = "start"
	SaleEventEnd   SaleEventKind = "end"
)

// FireSaleEvent is a scheduled sale:started or sale:ended coming due.
type FireSaleEvent struct {
	TenantID, SaleID uuid.UUID
	Kind             SaleEventKind
	// At is the time the event was scheduled for; if the sale moved since, the event is stale.
	At time.Time
}

// FireSaleEventHandler broadcasts scheduled sale events.
type FireSaleEventHandler struct {
	Sales     ports.SaleRepository
	Inventory ports.InventoryStore
	Live      ports.LiveEvents
	Now       func() time.Time
}

// Handle broadcasts the event unless the admin moved the sale's time since it was scheduled
// (the move scheduled another one). It reports whether it broadcast.
func (h FireSaleEventHandler) Handle(ctx context.Context, cmd FireSaleEvent) (bool, error) {
	s, err := h.Sales.Sale(ctx, cmd.TenantID, cmd.SaleID)
	if err != nil {
		return false, err
	}
	var due time.Time
	typ, reason := domain.LiveSaleStarted, ""
	if cmd.Kind == SaleEventStart {
		due = s.StartsAt
	} else {
		due, typ, reason = s.EndsAt, domain.LiveSaleEnded, "ended"
	}
	if due.UnixMilli() != cmd.At.UnixMilli() {
		return false, nil // stale: the sale was moved
	}
	remaining := s.TotalStock
	if inv, ok, err := h.Inventory.Inventory(ctx, s.TenantID, s.ID); err == nil && ok {
		remaining = inv.Remaining
	}
	now := h.Now()
	if now.Before(due) { // a clock ahead of ours fired it early: report the state as of due
		now = due
	}
	err = h.Live.Publish(ctx, domain.LiveEvent{Type: typ, TenantID: s.TenantID, SaleID: s.ID, TS: h.Now(),
		Data: saleTimes(s, now, remaining, reason)})
	return err == nil, err
}

// IssueTicketHandler gives an authenticated client a one-time WebSocket ticket.
type IssueTicketHandler struct {
	Tickets ports.TicketStore
	TTL     time.Duration
}

// Handle issues a ticket for p, valid once within TTL.
func (h IssueTicketHandler) Handle(ctx context.Context, p domain.Principal) (string, time.Duration, error) {
	t, err := h.Tickets.IssueTicket(ctx, p, h.TTL)
	return t, h.TTL, err
}

// RedeemTicketHandler spends a one-time WebSocket ticket for the identity it was issued to.
type RedeemTicketHandler struct {
	Tickets ports.TicketStore
}

// Handle returns the ticket's principal, once; an unknown, used or expired ticket fails with
// domain.ErrUnauthenticated.
func (h RedeemTicketHandler) Handle(ctx context.Context, ticket string) (domain.Principal, error) {
	p, ok, err := h.Tickets.RedeemTicket(ctx, ticket)
	if err != nil {
		return domain.Principal{}, fmt.Errorf("redeem ticket: %w", err)
	}
	if !ok {
		return domain.Principal{}, domain.ErrUnauthenticated.WithDetail("the ticket is unknown, used or expired")
	}
	return p, nil
}
