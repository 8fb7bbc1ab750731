package app_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/livefeed"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// soldOutSale is a sale of one unit, bought by the first buyer: sold out, known to the node.
func soldOutSale(t *testing.T, e *env) (domain.Sale, app.PlaceOrder) {
	t.Helper()
	s := e.activeSale(t, 1, 1)
	first := app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "first-key"}
	if _, err := e.app.PlaceOrder.Handle(ctx, first); err != nil {
		t.Fatalf("the last unit: %v", err)
	}
	if !e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Fatal("the purchase that took the last unit did not mark the sale sold out")
	}
	return s, first
}

// A sale known sold out is refused from memory: the store takes no purchase and keeps no answer;
// a key already in use is still answered as the store would (the accepted order replays).
func TestSoldOutIsAnsweredFromMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, first := soldOutSale(t, e)
	purchases := e.inv.count("Purchase")

	late := app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "late-key"}
	for range 2 { // the retry is answered afresh: nothing was recorded
		_, err := e.app.PlaceOrder.Handle(ctx, late)
		wantErr(t, err, domain.ErrSoldOut)
		if _, ok := e.inv.record(scopeOf(late.Principal, late.IdempotencyKey)); ok {
			t.Fatal("a refusal from memory left an idempotency record")
		}
	}
	again, err := e.app.PlaceOrder.Handle(ctx, first)
	if err != nil || !again.Replayed || again.Order.UserID != first.Principal.UserID {
		t.Fatalf("retry of the accepted purchase = %+v, %v; want its order replayed", again, err)
	}
	if n := e.inv.count("Purchase"); n != purchases {
		t.Errorf("the store took %d purchases of a sale known sold out, want 0", n-purchases)
	}
	if n := e.inv.count("Lookup"); n != 3 {
		t.Errorf("%d key lookups, want 3", n)
	}
}

// The mark lasts SoldOutTTL: then the store is asked again, and its "sold out" renews the mark.
func TestSoldOutMarkEndsAfterItsTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, _ := soldOutSale(t, e)
	e.clock.Advance(e.settings.SoldOutTTL)
	if e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Fatalf("still marked sold out after %v", e.settings.SoldOutTTL)
	}
	purchases := e.inv.count("Purchase")
	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k-after"})
	wantErr(t, err, domain.ErrSoldOut)
	if e.inv.count("Purchase") != purchases+1 || !e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Fatal("the store's sold out did not mark the sale again")
	}
}

// A node that did not see the last unit go marks the sale when the store refuses a purchase as
// sold out, or when another node's sale:ended says so; never on insufficient stock.
func TestSoldOutIsLearnt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, _ := soldOutSale(t, e)
	e.app.SoldOutSales.Clear(s.TenantID, s.ID) // as on a node that never knew
	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k-other"})
	wantErr(t, err, domain.ErrSoldOut)
	if !e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Error("the store's sold out did not mark the sale")
	}

	e.app.SoldOutSales.Clear(s.TenantID, s.ID)
	e.app.SoldOutSales.Observe(domain.LiveEvent{Type: domain.LiveSaleEnded, TenantID: s.TenantID, SaleID: s.ID,
		Data: domain.SaleTimesData{EndsAt: s.EndsAt, Status: domain.SaleSoldOut, Reason: "sold_out"}})
	if !e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Error("another node's sale:ended (sold_out) did not mark the sale")
	}
	// A scheduled sale:started arriving late (its status says sold out) changes nothing.
	e.app.SoldOutSales.Observe(domain.LiveEvent{Type: domain.LiveSaleStarted, TenantID: s.TenantID, SaleID: s.ID,
		Data: domain.SaleTimesData{EndsAt: s.EndsAt, Status: domain.SaleSoldOut}})
	if !e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Error("a sale:started of the sold-out sale cleared the mark")
	}

	few := e.activeSale(t, 2, 5)
	_, err = e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: few.ID, Quantity: 3, IdempotencyKey: "k-three"})
	wantErr(t, err, domain.ErrInsufficientStock)
	if e.app.SoldOutSales.Has(few.TenantID, few.ID) {
		t.Error("insufficient stock marked the sale sold out")
	}
}

// The mark never outlives the sale's window: after its end the answer is "ended", from the store.
func TestSoldOutMarkStopsAtTheSaleEnd(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *app.Settings) { s.SoldOutTTL = time.Hour })
	s := e.newSale(1, 1, -time.Hour, 30*time.Second)
	e.loadInventory(t, s, 0)
	if _, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k-last"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	_, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k-ended"})
	wantErr(t, err, domain.ErrSaleNotActive)
}

// toNode delivers the live events a feed broadcasts to a node's sold-out sales, as Redis
// pub/sub and the API role's subscription do.
type toNode struct{ sales *app.SoldOutSales }

func (n toNode) Broadcast(_ context.Context, e domain.LiveEvent) error {
	n.sales.Observe(e)
	return nil
}

// Stock coming back clears the mark at once, whichever way it comes back: the use case reports
// the stock change, every node's live feed says the sale has units left, and the next purchase
// is taken.
func TestSoldOutClearsWhenStockComesBack(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		back func(t *testing.T, e *env, s domain.Sale, first app.PlaceOrder)
	}{
		{"a failed order gives its stock back", func(t *testing.T, e *env, s domain.Sale, first app.PlaceOrder) {
			rec, _ := e.inv.record(scopeOf(first.Principal, first.IdempotencyKey))
			r, ok := e.inv.reservation(s.TenantID, s.ID, rec.Outcome.Order.ID)
			if !ok {
				t.Fatal("no reservation for the first order")
			}
			if _, err := app.ReleaseOrder(ctx, slog.New(slog.DiscardHandler), e.inv, e.orders, e.live, r); err != nil {
				t.Fatal(err)
			}
		}},
		{"an admin raises the stock", func(t *testing.T, e *env, s domain.Sale, _ app.PlaceOrder) {
			total := 2
			if _, err := e.app.UpdateSale.Handle(ctx, app.UpdateSale{Principal: e.admin(), SaleID: s.ID,
				Patch: domain.SalePatch{TotalStock: &total}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"the inventory is rebuilt with stock", func(t *testing.T, e *env, s domain.Sale, _ app.PlaceOrder) {
			e.inv.mem.RollBack(s.TenantID, s.ID, 1) // Redis lost the reservation (its order never reached PostgreSQL)
			e.inv.mem.MarkRolledBack(s.TenantID, s.ID)
			if err := e.app.PlaceOrder.Stock.RestoreSale(ctx, s.TenantID, s.ID); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(e.settings.RestoreFence) // purchases wait out the rebuild's fence
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s, first := soldOutSale(t, e)
			feed := livefeed.New(toNode{e.app.SoldOutSales}, e.inv, e.sales, slog.New(slog.DiscardHandler), e.clock.Now)
			before := len(e.live.changed)
			c.back(t, e, s, first)
			if !slices.Contains(e.live.changed[before:], s.ID) {
				t.Fatal("the stock change was not reported to live clients and nodes")
			}
			feed.StockChanged(s.TenantID, s.ID)
			feed.Flush(ctx)
			if e.app.SoldOutSales.Has(s.TenantID, s.ID) {
				t.Fatal("still marked sold out with stock back")
			}
			if _, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1,
				IdempotencyKey: "k-" + uuid.NewString()}); err != nil {
				t.Fatalf("a purchase once stock is back: %v", err)
			}
		})
	}
}

// A key whose first request left no answer (its claim in flight: the request died mid-way, as a
// failed request does on a Redis Cluster) is refused afresh as sold out, not "in flight"; the
// same key with another request is still "reused".
func TestSoldOutAnswersAKeyWithoutAnAnswerAfresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, _ := soldOutSale(t, e)
	e.app.SoldOutSales.Clear(s.TenantID, s.ID)
	e.inv.CompleteErr = errors.New("the answer is lost")
	stuck := app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "stuck-key"}
	_, err := e.app.PlaceOrder.Handle(ctx, stuck)
	wantErr(t, err, domain.ErrSoldOut)
	if rec, ok := e.inv.record(scopeOf(stuck.Principal, stuck.IdempotencyKey)); !ok || rec.Done {
		t.Fatalf("claim = %+v (%v), want it left in flight", rec, ok)
	}
	if !e.app.SoldOutSales.Has(s.TenantID, s.ID) {
		t.Fatal("the store's sold out did not mark the sale")
	}
	_, err = e.app.PlaceOrder.Handle(ctx, stuck)
	wantErr(t, err, domain.ErrSoldOut)
	other := stuck
	other.Quantity = 2
	_, err = e.app.PlaceOrder.Handle(ctx, other)
	wantErr(t, err, domain.ErrIdempotencyKeyReused)
}
