package app_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// What the use cases tell live clients, through the one LiveEvents port: every purchase
// changes the stock; the purchase that takes the last unit ends the sale, once; the worker tells
// the buyer alone that the order is confirmed.
func TestUseCasesPublishWhatHappened(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 2, 2)
	buyer := e.shopper()
	res, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: buyer, SaleID: s.ID, Quantity: 1, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.live.published(domain.LiveSaleEnded)); n != 0 {
		t.Fatalf("%d sale:ended before the sale sold out", n)
	}
	if _, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k2"}); err != nil {
		t.Fatal(err)
	}
	_, _ = e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k3"}) // sold out
	if ended := e.live.published(domain.LiveSaleEnded); len(ended) != 1 || ended[0].SaleID != s.ID {
		t.Fatalf("sale:ended events = %+v, want one for the sale", ended)
	}
	e.live.mu.Lock()
	changed := len(e.live.changed)
	e.live.mu.Unlock()
	if changed != 2 {
		t.Errorf("stock changes reported %d, want 2 (one per accepted purchase)", changed)
	}

	r, _ := e.inv.reservation(s.TenantID, s.ID, res.Order.ID)
	if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	confirmed := e.live.published(domain.LiveOrderConfirmed)
	if len(confirmed) != 1 || confirmed[0].UserID == nil || *confirmed[0].UserID != buyer.UserID {
		t.Fatalf("order:confirmed events = %+v, want one, to the buyer", confirmed)
	}
}
