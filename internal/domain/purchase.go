package domain

import (
	"fmt"
	"time"
)

// The purchase rules. Every inventory applies them in this order and answers with these errors:
// the in-memory and PostgreSQL inventories call the functions below, and lua/reserve.lua and
// lua/rereserve.lua are their atomic copy in Redis, whose replies the Redis adapter maps to the
// same errors (RefusalOf). The inventory contract suite (internal/ports/inventorytest) holds
// every implementation to them.
//
//  1. The sale window: not started (transient: the same purchase may succeed later), ended.
//     A retried dead letter skips it: the purchase was accepted inside the window.
//  2. Sold out: nothing left.
//  3. The per-user limit: the buyer's units, with these, above the limit.
//  4. The stock: fewer units left than asked for.

// CheckWindow is rule 1 at now.
func CheckWindow(now, starts, ends time.Time) error {
	if now.Before(starts) {
		return ErrSaleNotStarted
	}
	if !now.Before(ends) {
		return ErrSaleEnded
	}
	return nil
}

// StockCheck is what rules 2 to 4 look at.
type StockCheck struct {
	Remaining int // units left in the sale
	Limit     int // units one buyer may hold
	Bought    int // units the buyer holds already
	Quantity  int // units asked for
}

// CheckStock is rules 2 to 4: nil means the units may be taken.
func CheckStock(c StockCheck) error {
	switch {
	case c.Remaining <= 0:
		return SoldOut()
	case c.Bought+c.Quantity > c.Limit:
		return LimitExceeded(c.Quantity, c.Limit-c.Bought)
	case c.Remaining < c.Quantity:
		return InsufficientStock(c.Quantity, c.Remaining)
	}
	return nil
}

// SoldOut is rule 2's refusal.
func SoldOut() error { return ErrSoldOut.WithDetail("the sale has no stock left") }

// LimitExceeded is rule 3's refusal: qty more units would exceed the limit; allowed more fit.
func LimitExceeded(qty, allowed int) error {
	return ErrPurchaseLimitExceeded.WithDetail(
		fmt.Sprintf("%d more would exceed the per-user limit: %d more allowed", qty, allowed))
}

// InsufficientStock is rule 4's refusal: qty units asked for, left remain.
func InsufficientStock(qty, left int) error {
	return ErrInsufficientStock.WithDetail(fmt.Sprintf("%d requested, %d left", qty, left))
}

// Fenced refuses a purchase while a lost inventory was just restored (orders accepted before the
// loss take their stock first): not final, the same purchase goes through in a moment.
func Fenced() error {
	return ErrUnavailable.WithDetail("the sale's stock is being restored; retry in a moment")
}

// NotRetryable refuses to retry an order that is not failed in the inventory.
func NotRetryable() error {
	return ErrOrderNotRetryable.WithDetail("the order is not failed in the inventory")
}

// StockBelowSold refuses a total stock below the units already sold.
func StockBelowSold(total, sold int) error {
	return ErrStockBelowSold.WithDetail(fmt.Sprintf("totalStock %d is below the %d units already sold", total, sold))
}
