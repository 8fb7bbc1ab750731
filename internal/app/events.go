package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Consumer group names: each is its own group on order.confirmed, so each fails alone.
const (
	ConsumerEmail         = "flashsale-email"
	ConsumerAnalytics     = "flashsale-analytics"
	ConsumerInventorySync = "flashsale-inventory-sync"
)

// SendOrderEmailHandler mails the buyer a confirmation of each order.
type SendOrderEmailHandler struct {
	Users     ports.UserRepository
	Sales     ports.SaleRepository
	Mailer    ports.Mailer
	Processed ports.ProcessedEvents
}

// Handle sends the mail once per event. At least once: a crash between sending and recording
// sends it again; the mail's ID (the event id) lets a mail system drop the duplicate.
func (h SendOrderEmailHandler) Handle(ctx context.Context, e domain.OrderConfirmedV1) error {
	done, err := h.Processed.EventProcessed(ctx, ConsumerEmail, e.EventID)
	if err != nil || done {
		return err
	}
	u, err := h.Users.UserByID(ctx, e.TenantID, e.UserID)
	if err != nil {
		return permanentIf(err, domain.ErrUserNotFound, "order email: buyer")
	}
	s, err := h.Sales.Sale(ctx, e.TenantID, e.SaleID)
	if err != nil {
		return permanentIf(err, domain.ErrSaleNotFound, "order email: sale")
	}
	if err := h.Mailer.Send(ctx, orderConfirmationMail(u, s, e)); err != nil {
		return fmt.Errorf("order email: send: %w", err)
	}
	return h.markSent(ctx, e.EventID)
}

// markSent records a mail that went out. Failing now would send it again on the next delivery,
// so the record is retried, through a database outage, until it is written or the consumer
// stops (then the next delivery sends it again, as after a crash).
func (h SendOrderEmailHandler) markSent(ctx context.Context, eventID uuid.UUID) error {
	wait := 50 * time.Millisecond
	for {
		err := h.Processed.MarkEventProcessed(ctx, ConsumerEmail, eventID)
		if err == nil || errors.Is(err, domain.ErrPermanent) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("order email: sent, not recorded: %w", err)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func orderConfirmationMail(u domain.User, s domain.Sale, e domain.OrderConfirmedV1) domain.Mail {
	units := "unit"
	if e.Quantity > 1 {
		units = "units"
	}
	return domain.Mail{
		ID:      e.EventID.String(),
		To:      u.Email,
		Subject: fmt.Sprintf("Your order for %s is confirmed", s.Name),
		Text: fmt.Sprintf("Hello,\n\nyour order is confirmed.\n\n"+
			"  Sale:     %s\n  Quantity: %d %s at %s\n  Total:    %s\n  Order:    %s\n  Placed:   %s\n\n"+
			"Thank you for shopping with us.\n",
			s.Name, e.Quantity, units, money(e.UnitPriceCents, e.Currency), money(e.AmountCents, e.Currency),
			e.OrderID, e.OrderedAt.UTC().Format(time.RFC1123)),
	}
}

func money(cents int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", cents/100, cents%100, currency)
}

// permanentIf marks err as permanent when it is sentinel: retrying cannot make it succeed.
func permanentIf(err, sentinel error, what string) error {
	if errors.Is(err, sentinel) {
		return fmt.Errorf("%s: %w: %w", what, err, domain.ErrPermanent)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// RecordSaleStatsHandler keeps per-sale analytics.
type RecordSaleStatsHandler struct {
	Stats ports.SaleStatsRepository
}

// Handle adds the order to its sale's figures, once.
func (h RecordSaleStatsHandler) Handle(ctx context.Context, e domain.OrderConfirmedV1) error {
	_, err := h.Stats.AddOrderToStats(ctx, ConsumerAnalytics, e)
	return err
}

// GetSaleStatsHandler reads a sale's figures for an admin.
type GetSaleStatsHandler struct {
	Sales ports.SaleRepository
	Stats ports.SaleStatsRepository
}

// Handle checks the sale is the admin's, then reads its figures.
func (h GetSaleStatsHandler) Handle(ctx context.Context, p domain.Principal, saleID uuid.UUID) (domain.SaleStats, error) {
	if !p.IsAdmin() {
		return domain.SaleStats{}, domain.ErrForbidden
	}
	if _, err := h.Sales.Sale(ctx, p.TenantID, saleID); err != nil {
		return domain.SaleStats{}, err
	}
	return h.Stats.SaleStats(ctx, p.TenantID, saleID)
}

// SyncInventoryHandler keeps PostgreSQL's sold counter of each sale in step with the orders it
// confirms, and compares it with Redis. It never overwrites either side: a difference is
// reported (metric and log), for a human to look at.
type SyncInventoryHandler struct {
	Counters  ports.SaleCounterRepository
	Inventory ports.InventoryStore
	Sales     ports.SaleRepository
	Metrics   ports.Metrics
	Log       *slog.Logger
	Now       func() time.Time
	// Horizon is how long after its end a sale is still checked.
	Horizon time.Duration

	mu     sync.Mutex
	drifts map[uuid.UUID]int // last drift logged per sale
}

// Handle counts the event's units once.
func (h *SyncInventoryHandler) Handle(ctx context.Context, e domain.OrderConfirmedV1) error {
	_, err := h.Counters.AddSoldUnits(ctx, ConsumerInventorySync, e)
	return err
}

// Drift is one sale's comparison.
type Drift struct {
	TenantID, SaleID uuid.UUID
	// RedisConfirmed is Redis's sold units minus those still pending; PostgresSold the counter.
	RedisConfirmed, PostgresSold, Drift int
}

// Check compares every live sale: Redis's units of confirmed orders against PostgreSQL's
// counter. While events are on their way the two may differ for a moment; a difference that
// stays is a real one. Each change of a sale's drift is logged once.
func (h *SyncInventoryHandler) Check(ctx context.Context) ([]Drift, error) {
	refs, err := h.Sales.LiveSales(ctx, h.Now().Add(-h.Horizon))
	if err != nil {
		return nil, fmt.Errorf("inventory check: %w", err)
	}
	var out []Drift
	for _, ref := range refs {
		inv, ok, err := h.Inventory.Inventory(ctx, ref.TenantID, ref.SaleID)
		if err != nil {
			return out, fmt.Errorf("inventory check: %w", err)
		}
		sold, counted, err := h.Counters.SoldCounter(ctx, ref.TenantID, ref.SaleID)
		if err != nil {
			return out, fmt.Errorf("inventory check: %w", err)
		}
		if !ok || !counted {
			continue // nothing sold yet, or Redis does not know the sale (it is seeded on use)
		}
		d := Drift{TenantID: ref.TenantID, SaleID: ref.SaleID, RedisConfirmed: inv.Sold - inv.Pending, PostgresSold: sold}
		d.Drift = d.RedisConfirmed - d.PostgresSold
		h.Metrics.InventoryDrift(ref.TenantID, ref.SaleID, d.Drift)
		if err := h.Counters.RecordDrift(ctx, ref.TenantID, ref.SaleID, d.Drift); err != nil {
			return out, err
		}
		h.report(ctx, d)
		out = append(out, d)
	}
	h.Metrics.DriftChecked(refs)
	return out, nil
}

func (h *SyncInventoryHandler) report(ctx context.Context, d Drift) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.drifts == nil {
		h.drifts = map[uuid.UUID]int{}
	}
	if prev, seen := h.drifts[d.SaleID]; seen && prev == d.Drift || !seen && d.Drift == 0 {
		return
	}
	h.drifts[d.SaleID] = d.Drift
	if d.Drift == 0 {
		h.Log.InfoContext(ctx, "inventory back in step", "sale_id", d.SaleID, "sold", d.PostgresSold)
		return
	}
	h.Log.WarnContext(ctx, "inventory drift between the inventory store and PostgreSQL", "sale_id", d.SaleID,
		"redis_confirmed_units", d.RedisConfirmed, "postgres_sold_units", d.PostgresSold, "drift", d.Drift)
}

// GetOverviewHandler reads, for an admin, what this process measured of the traffic: the
// control room's figures.
type GetOverviewHandler struct {
	Metrics ports.Metrics
	Now     func() time.Time
}

// Handle checks the caller is an admin, then reads the figures (drift of their tenant only).
func (h GetOverviewHandler) Handle(ctx context.Context, p domain.Principal) (ports.Overview, time.Time, error) {
	if !p.IsAdmin() {
		return ports.Overview{}, time.Time{}, domain.ErrForbidden
	}
	at := h.Now()
	o, err := h.Metrics.Overview(ctx, p.TenantID)
	if err != nil {
		return ports.Overview{}, time.Time{}, fmt.Errorf("overview: %w", err)
	}
	return o, at, nil
}
