package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// DefaultSoldOutTTL is how long a node believes a sale sold out without seeing it again.
const DefaultSoldOutTTL = time.Second

// SoldOutSales is what this API node knows of sales that sold out, so that their purchases are
// answered from memory instead of taking a reservation round trip each.
//
// A sale is marked when a real "nothing left" is seen: the purchase that took its last unit, a
// purchase the store refused as sold out, or a sale:ended event with reason sold_out from any
// node. A mark lasts TTL (and never past the sale's end, where the answer is "ended"), and is
// renewed only by seeing the sale sold out again; it is cleared by any live event showing stock
// (inventory:updated with units left, or another status: a failed order's stock back on sale,
// an admin raising the stock or moving the window, a rebuilt inventory). So a node that missed
// the event that cleared it (pub/sub is at most once) answers sold out for at most TTL after
// stock came back. A purchase asking for more than is left is refused as insufficient stock by
// the store and marks nothing.
type SoldOutSales struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.RWMutex
	sales map[[2]uuid.UUID]soldOutMark
	// looking holds the sales whose end this node is reading, once at a time.
	looking sync.Map
}

type soldOutMark struct {
	until time.Time // the mark holds before this
	ends  time.Time // the sale's end, to renew the mark without reading the sale
}

// NewSoldOutSales remembers sold-out sales for ttl; ttl <= 0 disables it (nothing is ever marked).
func NewSoldOutSales(ttl time.Duration, now func() time.Time) *SoldOutSales {
	if now == nil {
		now = time.Now
	}
	return &SoldOutSales{ttl: ttl, now: now, sales: map[[2]uuid.UUID]soldOutMark{}}
}

// Has reports whether the sale is known sold out now. A nil SoldOutSales knows nothing.
func (b *SoldOutSales) Has(tenantID, saleID uuid.UUID) bool {
	if b == nil || b.ttl <= 0 {
		return false
	}
	b.mu.RLock()
	m, ok := b.sales[[2]uuid.UUID{tenantID, saleID}]
	b.mu.RUnlock()
	return ok && b.now().Before(m.until)
}

// Mark records that the sale, ending at ends, has nothing left as of now.
func (b *SoldOutSales) Mark(tenantID, saleID uuid.UUID, ends time.Time) {
	if b == nil || b.ttl <= 0 {
		return
	}
	now := b.now()
	until := now.Add(b.ttl)
	if ends.Before(until) {
		until = ends
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sales) >= 1024 { // sales that ended are of no more use
		for k, m := range b.sales {
			if !now.Before(m.ends) {
				delete(b.sales, k)
			}
		}
	}
	b.sales[[2]uuid.UUID{tenantID, saleID}] = soldOutMark{until: until, ends: ends}
}

// renew marks the sale again with the end this node knows; false when it knows none (or the
// sale it knew has ended since: its end may have moved).
func (b *SoldOutSales) renew(tenantID, saleID uuid.UUID) bool {
	b.mu.RLock()
	m, ok := b.sales[[2]uuid.UUID{tenantID, saleID}]
	b.mu.RUnlock()
	if !ok || !b.now().Before(m.ends) {
		return false
	}
	b.Mark(tenantID, saleID, m.ends)
	return true
}

// Clear forgets that the sale was sold out.
func (b *SoldOutSales) Clear(tenantID, saleID uuid.UUID) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.sales, [2]uuid.UUID{tenantID, saleID})
}

// Observe takes a live event of any node (its Data decoded: domain.InventoryData for
// inventory:updated, domain.SaleTimesData for sale:started and sale:ended).
func (b *SoldOutSales) Observe(e domain.LiveEvent) {
	if b == nil {
		return
	}
	switch d := e.Data.(type) {
	case domain.InventoryData:
		if d.Remaining > 0 || d.Status != domain.SaleSoldOut {
			b.Clear(e.TenantID, e.SaleID)
			return
		}
		b.renew(e.TenantID, e.SaleID)
	case domain.SaleTimesData:
		switch {
		case e.Type == domain.LiveSaleEnded && d.Reason == "sold_out":
			b.Mark(e.TenantID, e.SaleID, d.EndsAt)
		case d.Status != domain.SaleSoldOut: // ended, or (re)started with stock
			b.Clear(e.TenantID, e.SaleID)
		}
	}
}

// answerSoldOut answers a purchase of a sale this node knows sold out without taking a
// reservation: a key already answered is answered as the store would (its replay, or reused
// for another request), any other purchase is refused as sold out, afresh and without storing
// the refusal, so a retry is answered afresh too (a key whose first request has no answer yet
// included: on a Cluster a request that failed mid-way leaves its claim without one). The
// session of the purchase's gate is checked in the same step; its rate limit is not (such a
// purchase costs less than the limit would). A store that cannot look the key up fails the
// purchase, as it would have failed the reservation. answered is false when the sale is not
// known sold out.
func (h PlaceOrderHandler) answerSoldOut(ctx context.Context, p ports.Purchase) (_ PlaceOrderResult, answered bool, _ error) {
	r := p.Reservation
	if !h.SoldOutSales.Has(r.TenantID, r.SaleID) {
		return PlaceOrderResult{}, false, nil
	}
	rec, known, err := h.Purchases.Lookup(ctx, p.Scope, p.Reservation.SaleID, p.Gate.SessionID)
	if known && rec.Fingerprint == "" {
		// Found in the sale only (the claim was freed after its request failed): the key's
		// answer in this sale, as a reservation finding the key there answers any request with it.
		rec.Fingerprint = p.Fingerprint
	}
	switch {
	case err != nil && domain.CodeOf(err) != "":
		return PlaceOrderResult{}, true, err
	case err != nil:
		return PlaceOrderResult{}, true, fmt.Errorf("place order: %w", err)
	case known && (rec.Done || rec.Fingerprint != p.Fingerprint):
		res, err := replay(rec, p.Fingerprint)
		return res, true, err
	}
	// A free key, or this request's own with no answer yet (its first request died, or is
	// still running in a sale that has nothing left): sold out, afresh.
	return PlaceOrderResult{}, true, domain.SoldOut()
}

// sawSoldOut marks the sale after the store refused a purchase as sold out, renewing the mark
// when this node knows the sale's end, else reading the sale (one request per sale at a time).
func (h PlaceOrderHandler) sawSoldOut(ctx context.Context, tenantID, saleID uuid.UUID) {
	if h.SoldOutSales == nil || h.SoldOutSales.ttl <= 0 || h.SoldOutSales.renew(tenantID, saleID) {
		return
	}
	if _, busy := h.SoldOutSales.looking.LoadOrStore(saleID, true); busy {
		return
	}
	defer h.SoldOutSales.looking.Delete(saleID)
	s, err := h.Sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.Log.WarnContext(ctx, "sold-out sale not remembered", "sale_id", saleID, "err", err)
		}
		return
	}
	h.SoldOutSales.Mark(tenantID, saleID, s.EndsAt)
}
