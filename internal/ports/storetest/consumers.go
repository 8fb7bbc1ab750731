package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

var consumerCases = []testCase{
	{"ProcessedEventsPerConsumer", testProcessedEvents},
	{"AddOrderToStatsOnce", testAddOrderToStats},
	{"SaleCountersOnce", testSaleCounters},
}

func (f *Fixture) processed(consumer string, id uuid.UUID) bool {
	f.T.Helper()
	done, err := f.St.EventProcessed(f.Ctx, consumer, id)
	if err != nil {
		f.T.Fatalf("EventProcessed(%s, %s): %v", consumer, id, err)
	}
	return done
}

func testProcessedEvents(t *testing.T, f *Fixture) {
	id, other := uuid.New(), uuid.New()
	if f.processed("email", id) {
		t.Fatal("event processed before it was marked")
	}
	for range 2 { // marking twice is harmless
		if err := f.St.MarkEventProcessed(f.Ctx, "email", id); err != nil {
			t.Fatalf("MarkEventProcessed: %v", err)
		}
	}
	for _, c := range []struct {
		consumer string
		id       uuid.UUID
		want     bool
	}{{"email", id, true}, {"analytics", id, false}, {"email", other, false}} {
		if got := f.processed(c.consumer, c.id); got != c.want {
			t.Fatalf("EventProcessed(%s, %s) = %v, want %v", c.consumer, c.id, got, c.want)
		}
	}
}

// refusesUnknownSale checks that apply refuses e, made an event of a sale that does not exist,
// as poison: an error wrapping ErrPermanent, and the event not even recorded as processed. It
// returns the refused event.
func (f *Fixture) refusesUnknownSale(what, consumer string, e domain.OrderConfirmedV1,
	apply func(context.Context, string, domain.OrderConfirmedV1) (bool, error)) domain.OrderConfirmedV1 {
	f.T.Helper()
	e.EventID, e.SaleID = uuid.New(), uuid.New()
	if applied, err := apply(f.Ctx, consumer, e); !errors.Is(err, domain.ErrPermanent) || applied {
		f.T.Fatalf("%s(unknown sale) = %v, %v, want an error wrapping ErrPermanent", what, applied, err)
	}
	if f.processed(consumer, e.EventID) {
		f.T.Fatalf("%s: the refused event was recorded as processed", what)
	}
	return e
}

func checkStats(t *testing.T, got domain.SaleStats, saleID uuid.UUID, orders, units int, revenue int64, first, last time.Time) {
	t.Helper()
	if got.SaleID != saleID || got.Orders != orders || got.Units != units || got.RevenueCents != revenue ||
		got.Currency != "EUR" || got.FirstOrderAt == nil || got.LastOrderAt == nil ||
		!got.FirstOrderAt.Equal(first) || !got.LastOrderAt.Equal(last) {
		t.Fatalf("stats = %+v (first %v, last %v), want sale %s, %d orders, %d units, %d cents EUR, first %v, last %v",
			got, got.FirstOrderAt, got.LastOrderAt, saleID, orders, units, revenue, first, last)
	}
}

func testAddOrderToStats(t *testing.T, f *Fixture) {
	w := f.World()
	const consumer = "analytics"
	tenantID := w.Sale.TenantID
	other := f.Sale(tenantID, "other drop", -time.Hour, 2*time.Hour, 0)

	stats := func(saleID uuid.UUID) domain.SaleStats {
		t.Helper()
		s, err := f.St.SaleStats(f.Ctx, tenantID, saleID)
		if err != nil {
			t.Fatalf("SaleStats: %v", err)
		}
		return s
	}
	if got := stats(w.Sale.ID); got != (domain.SaleStats{SaleID: w.Sale.ID}) {
		t.Fatalf("stats before any order = %+v, want zero values", got)
	}
	add := func(e domain.OrderConfirmedV1, wantApplied bool) {
		t.Helper()
		applied, err := f.St.AddOrderToStats(f.Ctx, consumer, e)
		if err != nil || applied != wantApplied {
			t.Fatalf("AddOrderToStats(%s) = %v, %v, want %v, nil", e.EventID, applied, err, wantApplied)
		}
	}

	t0 := f.Now.Add(-time.Hour)
	e1 := EventOf(t, w.Unsaved(2, t0.Add(10*time.Minute)))
	add(e1, true)
	checkStats(t, stats(w.Sale.ID), w.Sale.ID, 1, 2, 3998, e1.OrderedAt, e1.OrderedAt)
	add(e1, false) // redelivered
	checkStats(t, stats(w.Sale.ID), w.Sale.ID, 1, 2, 3998, e1.OrderedAt, e1.OrderedAt)

	e2 := EventOf(t, w.Unsaved(1, t0.Add(20*time.Minute)))
	add(e2, true)
	checkStats(t, stats(w.Sale.ID), w.Sale.ID, 2, 3, 5997, e1.OrderedAt, e2.OrderedAt)
	// An older order whose event arrives late moves the first order time back, not the last.
	e3 := EventOf(t, w.Unsaved(1, t0.Add(5*time.Minute)))
	add(e3, true)
	checkStats(t, stats(w.Sale.ID), w.Sale.ID, 3, 4, 7996, e3.OrderedAt, e2.OrderedAt)
	add(e2, false)
	checkStats(t, stats(w.Sale.ID), w.Sale.ID, 3, 4, 7996, e3.OrderedAt, e2.OrderedAt)

	// Other sales, and other tenants asking, see nothing of it.
	if got := stats(other.ID); got != (domain.SaleStats{SaleID: other.ID}) {
		t.Fatalf("stats of a sale without orders = %+v, want zero values", got)
	}
	if got, err := f.St.SaleStats(f.Ctx, uuid.New(), w.Sale.ID); err != nil || got != (domain.SaleStats{SaleID: w.Sale.ID}) {
		t.Fatalf("stats read by another tenant = %+v, %v, want zero values", got, err)
	}

	bad := f.refusesUnknownSale("AddOrderToStats", consumer, e1, f.St.AddOrderToStats)
	if got := stats(bad.SaleID); got != (domain.SaleStats{SaleID: bad.SaleID}) {
		t.Fatalf("stats of the unknown sale = %+v, want zero values", got)
	}
	checkStats(t, stats(w.Sale.ID), w.Sale.ID, 3, 4, 7996, e3.OrderedAt, e2.OrderedAt)
}

func testSaleCounters(t *testing.T, f *Fixture) {
	w := f.World()
	const consumer = "inventory-sync"
	tenantID, saleID := w.Sale.TenantID, w.Sale.ID

	counter := func(tenantID, saleID uuid.UUID, want int, wantOK bool) {
		t.Helper()
		sold, ok, err := f.St.SoldCounter(f.Ctx, tenantID, saleID)
		if err != nil || sold != want || ok != wantOK {
			t.Fatalf("SoldCounter(%s) = %d, %v, %v, want %d, %v", saleID, sold, ok, err, want, wantOK)
		}
	}
	add := func(e domain.OrderConfirmedV1, wantApplied bool) {
		t.Helper()
		applied, err := f.St.AddSoldUnits(f.Ctx, consumer, e)
		if err != nil || applied != wantApplied {
			t.Fatalf("AddSoldUnits(%s) = %v, %v, want %v, nil", e.EventID, applied, err, wantApplied)
		}
	}

	counter(tenantID, saleID, 0, false)
	// Recording a drift before the first event creates nothing.
	if err := f.St.RecordDrift(f.Ctx, tenantID, saleID, 4); err != nil {
		t.Fatalf("RecordDrift(no counter): %v", err)
	}
	counter(tenantID, saleID, 0, false)

	e1 := EventOf(t, w.Unsaved(2, f.Now))
	add(e1, true)
	counter(tenantID, saleID, 2, true)
	add(e1, false)
	e2 := EventOf(t, w.Unsaved(3, f.Now.Add(time.Second)))
	add(e2, true)
	add(e2, false)
	counter(tenantID, saleID, 5, true)

	// The same event applies once per consumer: the analytics consumer still takes it, and the
	// counter does not move.
	if applied, err := f.St.AddOrderToStats(f.Ctx, "analytics", e1); err != nil || !applied {
		t.Fatalf("AddOrderToStats(other consumer, same event) = %v, %v, want applied", applied, err)
	}
	counter(tenantID, saleID, 5, true)

	// Drift is recorded beside the counter, never in it; another tenant reads no counter.
	for _, d := range []int{3, -2, 0} {
		if err := f.St.RecordDrift(f.Ctx, tenantID, saleID, d); err != nil {
			t.Fatalf("RecordDrift(%d): %v", d, err)
		}
	}
	if err := f.St.RecordDrift(f.Ctx, uuid.New(), saleID, 9); err != nil {
		t.Fatalf("RecordDrift(other tenant): %v", err)
	}
	counter(uuid.New(), saleID, 0, false)
	counter(tenantID, saleID, 5, true)

	bad := f.refusesUnknownSale("AddSoldUnits", consumer, e2, f.St.AddSoldUnits)
	counter(tenantID, bad.SaleID, 0, false)
}
