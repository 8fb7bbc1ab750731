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
	// Attempt numbers this attempt, from 1.
	Attempt int
}

// WriteOrderHandler handles WriteOrder in the worker.
type WriteOrderHandler struct {
	Orders    ports.OrderRepository
	Inventory ports.InventoryStore
	Sales     ports.SaleRepository
	// Stock restores a sale's inventory the store lost, for an order to be adopted into.
	Stock Stock
	Now   func() time.Time
	Log   *slog.Logger
	// Live tells the buyer's live connections, and reports stock given back.
	Live ports.LiveEvents
	// Attempts is how many attempts an order PostgreSQL refuses (a permanent error) gets
	// before it is given up (ORDER_ATTEMPTS).
	Attempts int
	// RetryBudget is how long after its acceptance an order is retried through transient
	// failures (the database down, read-only, unreachable) before it is given up
	// (ORDER_RETRY_BUDGET). Giving up needs the database too: an order is never given up while
	// the failure cannot be recorded.
	RetryBudget time.Duration
	// AdoptWait is how long an order whose reservation is gone waits, within its attempt, for a
	// rolled-back inventory's rebuild (within a second) to adopt it: a retry of the task would
	// come seconds later, perhaps after the rebuild's fence let new purchases take its stock.
	AdoptWait time.Duration
}

// Handle writes the order to PostgreSQL, idempotently. It returns nil when the order is
// durable; an error wrapping domain.ErrPermanent when the order was given up, which happens
// only once its stock and the buyer's allowance are back on sale and PostgreSQL records it as
// failed; and any other error to be retried.
func (h WriteOrderHandler) Handle(ctx context.Context, cmd WriteOrder) error {
	r := cmd.Reservation
	current, ok, err := h.Inventory.Reservation(ctx, r.TenantID, r.SaleID, r.OrderID)
	if err != nil {
		return fmt.Errorf("write order %s: read reservation: %w", r.OrderID, err)
	}
	if ok {
		if current.Status == domain.OrderFailed {
			// Given up before (by an attempt that could not finish, or by the reconciler):
			// PostgreSQL must say so before the task ends.
			if err := recordFailure(ctx, h.Orders, current); err != nil {
				return fmt.Errorf("write order %s: released: %w", r.OrderID, err)
			}
			return fmt.Errorf("write order %s: reservation was released: %w", r.OrderID, domain.ErrPermanent)
		}
		r = current // the store's copy is authoritative (price, time)
	} else {
		adopted, done, err := h.adopt(ctx, r)
		if err != nil || done {
			return err
		}
		r = adopted
	}
	o := r.Order()
	o.Status = domain.OrderConfirmed
	now := h.Now().UTC()
	o.ConfirmedAt = &now
	if _, err := h.Orders.SaveOrder(ctx, o, domain.OrderConfirmedEvent(o, now)); err != nil {
		return h.fail(ctx, cmd, r, err)
	}
	if err := h.Inventory.MarkConfirmed(ctx, r); err != nil {
		// Durable already; the reconciler clears what is left.
		h.Log.WarnContext(ctx, "order durable but still marked awaited", "order_id", r.OrderID, "err", err)
	}
	buyer := o.UserID
	publish(ctx, h.Live, h.Log, domain.LiveEvent{Type: domain.LiveOrderConfirmed, TenantID: o.TenantID,
		SaleID: o.SaleID, UserID: &buyer, TS: now, Data: domain.OrderConfirmedData{
			OrderID: o.ID, Quantity: o.Quantity, Status: o.Status, AmountCents: o.AmountCents, Currency: o.Currency,
		}})
	return nil
}

// adopt deals with an order whose reservation the inventory store lost (Redis restarted empty
// or rolled back while the order was on its way): it was accepted, so it is kept if it can be
// without overselling. Its stock is taken again in the store as it is now (restored from
// PostgreSQL first if the sale's inventory is gone); if the sale has no stock left for it, or
// its buyer no allowance, it is lost with the store: recorded failed and dead-lettered (done),
// never sold twice. An order PostgreSQL already holds needs nothing (done).
func (h WriteOrderHandler) adopt(ctx context.Context, r domain.Reservation) (domain.Reservation, bool, error) {
	confirmed, err := h.Orders.ConfirmedOrderIDs(ctx, r.TenantID, []uuid.UUID{r.OrderID})
	if err != nil {
		return r, false, fmt.Errorf("write order %s: reservation lost: %w", r.OrderID, err)
	}
	if confirmed[r.OrderID] {
		return r, true, nil
	}
	res, adopted, err := h.Inventory.Adopt(ctx, r)
	if errors.Is(err, domain.ErrSaleNotFound) {
		if serr := h.Stock.RestoreSale(ctx, r.TenantID, r.SaleID); serr != nil {
			return r, false, fmt.Errorf("write order %s: reservation lost: %w", r.OrderID, serr)
		}
		res, adopted, err = h.Inventory.Adopt(ctx, r)
	}
	for waited := time.Duration(0); errors.Is(err, domain.ErrUnavailable) && waited < h.AdoptWait; waited += adoptPoll {
		if serr := sleepCtx(ctx, adoptPoll); serr != nil {
			return r, false, serr
		}
		res, adopted, err = h.Inventory.Adopt(ctx, r)
	}
	switch {
	case err == nil:
		if adopted {
			h.Log.WarnContext(ctx, "order adopted: the inventory store had lost its reservation", "order_id", r.OrderID,
				"sale_id", r.SaleID, "quantity", r.Quantity)
		}
		return res, false, nil
	case domain.CodeOf(err) == "" || errors.Is(err, domain.ErrUnavailable):
		// A failure, or an inventory that rolled back and awaits its rebuild: retried.
		return r, false, fmt.Errorf("write order %s: adopt: %w", r.OrderID, err)
	}
	// No stock or allowance left for it: keeping it would oversell.
	if ferr := recordFailure(ctx, h.Orders, r); ferr != nil {
		return r, false, fmt.Errorf("write order %s: lost with the inventory store (%v): %w", r.OrderID, err, ferr)
	}
	h.Log.ErrorContext(ctx, "accepted order lost with the inventory store: no stock left to keep it without overselling",
		"order_id", r.OrderID, "sale_id", r.SaleID, "user_id", r.UserID, "quantity", r.Quantity, "refusal", err)
	return r, true, fmt.Errorf("write order %s: lost with the inventory store: %v: %w", r.OrderID, err, domain.ErrPermanent)
}

// fail decides what a failed write means: retry it, or give the order up.
func (h WriteOrderHandler) fail(ctx context.Context, cmd WriteOrder, r domain.Reservation, cause error) error {
	permanent := errors.Is(cause, domain.ErrPermanent)
	if permanent && cmd.Attempt < h.Attempts {
		return fmt.Errorf("write order %s: attempt %d of %d: %v", r.OrderID, cmd.Attempt, h.Attempts, cause)
	}
	if !permanent && h.Now().Sub(r.CreatedAt) < h.RetryBudget {
		return fmt.Errorf("write order %s: %w", r.OrderID, cause)
	}
	rel, err := ReleaseOrder(ctx, h.Log, h.Inventory, h.Orders, h.Live, r)
	switch {
	case err != nil && permanent: // not given up yet: retried until the failure is recorded
		return fmt.Errorf("write order %s: %v; giving it up: %w", r.OrderID, cause, err)
	case err != nil:
		return fmt.Errorf("write order %s: %w; giving it up: %w", r.OrderID, cause, err)
	case rel.Durable: // the write landed after all; only its answer was lost
		return nil
	}
	h.Log.WarnContext(ctx, "order given up: its stock is back on sale", "order_id", r.OrderID,
		"attempt", cmd.Attempt, "permanent", permanent, "err", cause)
	return fmt.Errorf("write order %s: given up: %w: %w", r.OrderID, cause, domain.ErrPermanent)
}

// Release is what ReleaseOrder did.
type Release struct {
	// Released: the stock and allowance went back on sale now.
	Released bool
	// Durable: the order is confirmed in PostgreSQL after all; nothing was given up.
	Durable bool
}

// ReleaseOrder gives up an order that cannot be written: PostgreSQL records it as failed first,
// then its stock and the buyer's allowance go back on sale. An attempt that failed on its way
// back (the commit landed, the answer was lost) may have written the order after all:
// PostgreSQL is asked first, and a confirmed order is kept. Until PostgreSQL answers and records
// the failure nothing is released, so an outage never cancels an order; the caller retries.
func ReleaseOrder(ctx context.Context, log *slog.Logger, inventory ports.InventoryStore, orders ports.OrderRepository,
	live ports.LiveEvents, r domain.Reservation) (Release, error) {
	confirmed, err := orders.ConfirmedOrderIDs(ctx, r.TenantID, []uuid.UUID{r.OrderID})
	if err != nil {
		return Release{}, fmt.Errorf("release order %s: %w", r.OrderID, err)
	}
	if confirmed[r.OrderID] {
		return Release{Durable: true}, inventory.MarkConfirmed(ctx, r)
	}
	if err := recordFailure(ctx, orders, r); err != nil {
		return Release{}, fmt.Errorf("release order %s: %w", r.OrderID, err)
	}
	released, err := inventory.Release(ctx, r)
	if err != nil {
		return Release{}, fmt.Errorf("release order %s: %w", r.OrderID, err)
	}
	if released {
		live.StockChanged(r.TenantID, r.SaleID)
		log.InfoContext(ctx, "order failed: stock back on sale", "order_id", r.OrderID, "quantity", r.Quantity)
	}
	return Release{Released: released}, nil
}

// recordFailure writes the order as failed (a confirmation already there stays). An order
// PostgreSQL can never store (an unknown sale or user) has nothing to record.
func recordFailure(ctx context.Context, orders ports.OrderRepository, r domain.Reservation) error {
	o := r.Order()
	o.Status = domain.OrderFailed
	if _, err := orders.SaveOrder(ctx, o); err != nil && !errors.Is(err, domain.ErrPermanent) {
		return fmt.Errorf("record the failure: %w", err)
	}
	return nil
}

// adoptPoll spaces the adoption attempts of an order waiting for a rebuild (AdoptWait).
const adoptPoll = 100 * time.Millisecond

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
