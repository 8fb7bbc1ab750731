package livefeed_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/livefeed"
	"github.com/flashsale/flashsale/internal/adapters/memory"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

type oneSale struct {
	ports.SaleRepository
	s domain.Sale
}

func (o oneSale) Sale(context.Context, uuid.UUID, uuid.UUID) (domain.Sale, error) { return o.s, nil }

type recorder struct {
	mu     sync.Mutex
	events []domain.LiveEvent
	fail   bool
}

func (r *recorder) Broadcast(_ context.Context, e domain.LiveEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("redis down")
	}
	r.events = append(r.events, e)
	return nil
}

// Many stock changes between two flushes are one inventory:updated event with the latest
// figures; one that could not go out goes out at the next flush.
func TestStockChangesAreCoalesced(t *testing.T) {
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	s := domain.Sale{ID: uuid.New(), TenantID: uuid.New(), TotalStock: 10, PerUserLimit: 10, StartsAt: start,
		EndsAt: start.Add(time.Hour), PriceCents: 1, Currency: "EUR"}
	inv := memory.NewInventory(nil)
	if _, err := inv.SyncSale(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	f := livefeed.New(rec, inv, oneSale{s: s}, slog.New(slog.DiscardHandler), nil)
	for i := range 4 {
		if _, err := inv.Reserve(ctx, domain.Reservation{OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID,
			UserID: uuid.New(), Quantity: 1, IdempotencyKey: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
		f.StockChanged(s.TenantID, s.ID)
	}
	rec.fail = true
	f.Flush(ctx)
	rec.fail = false
	f.Flush(ctx)
	f.Flush(ctx) // nothing changed since
	if len(rec.events) != 1 {
		t.Fatalf("%d events, want 1", len(rec.events))
	}
	d, ok := rec.events[0].Data.(domain.InventoryData)
	if !ok || rec.events[0].Type != domain.LiveInventoryUpdated || d.Remaining != 6 || d.TotalStock != 10 {
		t.Fatalf("event = %+v, want inventory:updated with 6 of 10 left", rec.events[0])
	}
}
