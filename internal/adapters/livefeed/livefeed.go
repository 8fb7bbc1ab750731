// Package livefeed implements ports.LiveEvents on a ports.Broadcaster: events go out as they
// come, and stock changes are coalesced per sale, flushed on a ticker with the latest figures.
package livefeed

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Feed turns stock changes into inventory:updated events, coalesced per sale: however many
// purchases land between two flushes, clients get one event with the latest figures, and the
// last change (the final 0 included) is always flushed.
type Feed struct {
	broadcaster ports.Broadcaster
	inventory   ports.InventoryStore
	sales       ports.SaleRepository
	log         *slog.Logger
	now         func() time.Time

	mu    sync.Mutex
	dirty map[[2]uuid.UUID]struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ ports.LiveEvents = (*Feed)(nil)

// New publishes through b, reading the figures of a changed sale from inventory and sales.
func New(b ports.Broadcaster, inventory ports.InventoryStore, sales ports.SaleRepository, log *slog.Logger, now func() time.Time) *Feed {
	if now == nil {
		now = time.Now
	}
	return &Feed{broadcaster: b, inventory: inventory, sales: sales, log: log, now: now, dirty: map[[2]uuid.UUID]struct{}{}}
}

// Publish implements ports.LiveEvents.
func (f *Feed) Publish(ctx context.Context, e domain.LiveEvent) error {
	return f.broadcaster.Broadcast(ctx, e)
}

// StockChanged implements ports.LiveEvents: the next Flush reports the sale.
func (f *Feed) StockChanged(tenantID, saleID uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirty[[2]uuid.UUID{tenantID, saleID}] = struct{}{}
}

// Flush broadcasts the latest stock of every sale changed since the last flush; a sale whose
// event could not go out is tried again at the next flush.
func (f *Feed) Flush(ctx context.Context) {
	f.mu.Lock()
	dirty := f.dirty
	f.dirty = map[[2]uuid.UUID]struct{}{}
	f.mu.Unlock()
	for key := range dirty {
		if err := f.publishInventory(ctx, key[0], key[1]); err != nil {
			f.log.WarnContext(ctx, "inventory update not broadcast", "sale_id", key[1], "err", err)
			f.StockChanged(key[0], key[1])
		}
	}
}

func (f *Feed) publishInventory(ctx context.Context, tenantID, saleID uuid.UUID) error {
	s, err := f.sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		return err
	}
	inv, ok, err := f.inventory.Inventory(ctx, tenantID, saleID)
	if err != nil || !ok {
		return err
	}
	now := f.now()
	return f.broadcaster.Broadcast(ctx, domain.LiveEvent{
		Type: domain.LiveInventoryUpdated, TenantID: tenantID, SaleID: saleID, TS: now,
		Data: domain.InventoryData{TotalStock: inv.Total, Remaining: inv.Remaining, Status: s.Status(now, inv.Remaining)},
	})
}

// Start flushes every interval until Stop.
func (f *Feed) Start(interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.Flush(ctx)
			}
		}
	})
}

// Stop ends the flushing after a last flush, so the final figures go out.
func (f *Feed) Stop(ctx context.Context) error {
	if f.cancel != nil {
		f.cancel()
		f.wg.Wait()
	}
	f.Flush(ctx)
	return nil
}
