package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// PlaceOrder is a shopper buying from a sale.
type PlaceOrder struct {
	Principal      domain.Principal
	SaleID         uuid.UUID
	Quantity       int
	IdempotencyKey string
	// Gate is the edge's session and rate-limit checks, when it leaves them to the purchase
	// store (ports.PurchaseStore.GateInPurchase); zero otherwise.
	Gate ports.PurchaseGate
}

// fingerprint identifies the request an idempotency key stands for.
func (c PlaceOrder) fingerprint() string {
	sum := sha256.Sum256([]byte(c.SaleID.String() + "|" + strconv.Itoa(c.Quantity)))
	return hex.EncodeToString(sum[:16])
}

// PlaceOrderResult is the accepted (pending) order.
type PlaceOrderResult struct {
	Order domain.Order
	// Replayed: the answer, order or error, is the one first given for this idempotency key.
	Replayed bool
	// Rate is the rate limit's decision when the purchase's gate asked for one (also with
	// domain.ErrRateLimited).
	Rate *ports.RateDecision
}

// PlaceOrderHandler handles PlaceOrder: the hot path of a flash sale.
type PlaceOrderHandler struct {
	Sales ports.SaleRepository
	// Purchases claims the idempotency key and reserves the stock in one step.
	Purchases ports.PurchaseStore
	Now       func() time.Time
	Log       *slog.Logger
	// IdempotencyLease bounds how long a crashed request keeps its key busy.
	IdempotencyLease time.Duration
	// IdempotencyTTL is how long answers are kept for replay.
	IdempotencyTTL time.Duration
	// Live pushes the stock change and a sell-out to live clients.
	Live ports.LiveEvents
	// Queue takes accepted orders to the worker (asynchronously in the API role), and queues
	// this node's recent orders again when the inventory store lost them.
	Queue ports.Dispatcher
	// Stock restores a sale's inventory the store does not have.
	Stock Stock
	// Node names this API node on the reservations it accepts (see ports.Nodes).
	Node string
	// SoldOutSales answers purchases of sales this node knows sold out from memory (nil: none).
	SoldOutSales *SoldOutSales
	// Room spends the buyer's admission when the sale has a waiting room (nil: no rooms).
	Room *WaitingRoom
	// readopting holds the sales whose recent orders this node is taking again (readopt).
	readopting *sync.Map
}

// Handle takes the purchase in one step of the purchase store (claim the key, check the rules,
// take the stock: lua/reserve.lua in Redis) and queues the accepted order for PostgreSQL.
//
// Idempotency works at two levels. The key is first claimed per user, which catches a key reused
// with another request and a retry racing the first. The reservation then records the key
// within the sale, so even when a claim expired (a crash mid-request) a retry finds the first
// order instead of taking stock twice.
func (h PlaceOrderHandler) Handle(ctx context.Context, cmd PlaceOrder) (PlaceOrderResult, error) {
	if cmd.Principal.Role != domain.RoleShopper {
		return PlaceOrderResult{}, domain.ErrForbidden.WithDetail("only shoppers buy")
	}
	if cmd.Quantity < 1 {
		return PlaceOrderResult{}, domain.ErrInvalidRequest.WithDetail("quantity must be at least 1")
	}
	admission, err := h.Room.Admit(ctx, cmd, h.Purchases.AdmissionInPurchase())
	if err != nil {
		return PlaceOrderResult{}, err
	}
	p := ports.Purchase{
		Scope:       ports.IdempotencyScope{TenantID: cmd.Principal.TenantID, UserID: cmd.Principal.UserID, Key: cmd.IdempotencyKey},
		Fingerprint: cmd.fingerprint(),
		Lease:       h.IdempotencyLease,
		TTL:         h.IdempotencyTTL,
		Gate:        cmd.Gate,
		Admission:   admission,
		Reservation: domain.Reservation{
			OrderID: uuid.Must(uuid.NewV7()), TenantID: cmd.Principal.TenantID, SaleID: cmd.SaleID,
			UserID: cmd.Principal.UserID, Quantity: cmd.Quantity, IdempotencyKey: cmd.IdempotencyKey, Node: h.Node,
		},
	}
	if res, answered, err := h.answerSoldOut(ctx, p); answered {
		return res, err
	}
	out, err := h.purchase(ctx, p)
	if errors.Is(err, domain.ErrSoldOut) {
		h.sawSoldOut(ctx, cmd.Principal.TenantID, cmd.SaleID)
	}
	if errors.Is(err, ports.ErrRolledBack) {
		h.readopt(ctx, cmd.Principal.TenantID, cmd.SaleID)
	}
	if out.Known != nil {
		res, err := replay(*out.Known, p.Fingerprint)
		res.Rate = out.Rate
		return res, err
	}
	var order domain.Order
	if err == nil {
		h.accepted(ctx, out.Reserved)
		order = out.Reserved.Reservation.Order()
	}
	if out.Recorded { // the store recorded the answer, or left the key free: nothing to do here
		if err != nil {
			return PlaceOrderResult{Rate: out.Rate}, err
		}
		return PlaceOrderResult{Order: order, Replayed: out.Reserved.Duplicate, Rate: out.Rate}, nil
	}
	if !worthReplaying(err) {
		// No final answer: a refusal a retry may not meet, or a failure. The key is freed for the
		// retry; if a failure came after the stock was taken, the retry finds that reservation
		// (the sale records the key) instead of taking more.
		if ferr := h.Purchases.Forget(ctx, p.Scope); ferr != nil {
			h.Log.WarnContext(ctx, "idempotency claim kept until its lease ends", "err", ferr)
		}
		if domain.CodeOf(err) == "" {
			return PlaceOrderResult{}, fmt.Errorf("place order: %w", err)
		}
		return PlaceOrderResult{}, err
	}
	rec := ports.IdempotencyRecord{Fingerprint: p.Fingerprint, Done: true}
	if err != nil {
		var de *domain.Error
		errors.As(err, &de)
		rec.Outcome = ports.PlaceOrderOutcome{ErrCode: de.Code, ErrDetail: de.Detail}
	} else {
		rec.Outcome = ports.PlaceOrderOutcome{Order: &order}
	}
	if cerr := h.Purchases.Complete(ctx, p.Scope, rec, h.IdempotencyTTL); cerr != nil {
		// The reservation itself is idempotent, so a retry still finds this order.
		h.Log.WarnContext(ctx, "idempotency answer not stored", "err", cerr)
	}
	return PlaceOrderResult{Order: order}, err
}

// purchase takes the purchase; when the store does not know the sale (its inventory was never
// loaded, or was lost) it loads the sale's inventory from PostgreSQL and tries once more.
func (h PlaceOrderHandler) purchase(ctx context.Context, p ports.Purchase) (ports.PurchaseOutcome, error) {
	out, err := h.Purchases.Purchase(ctx, p)
	if !errors.Is(err, domain.ErrSaleNotFound) {
		return out, err
	}
	rate := out.Rate
	if err := h.Stock.RestoreSale(ctx, p.Reservation.TenantID, p.Reservation.SaleID); err != nil {
		return ports.PurchaseOutcome{}, err
	}
	p.Gate = ports.PurchaseGate{} // passed already: the store checks it before it looks for the sale
	out, err = h.Purchases.Purchase(ctx, p)
	if out.Rate == nil {
		out.Rate = rate
	}
	return out, err
}

// readopt is this node's part when it finds the inventory store lost or rolled back reservations
// it accepted (its own floor, or a rebuild since): it fences the sale, rebuilds it at once if it
// is marked (the worker's check would within a second), then takes again the stock of the
// orders it accepted lately whose reservations the store lost, before new purchases can, and
// queues them again (their tasks may be gone too): only this node knows them.
// Whatever fails here is left to the worker, which adopts an order whose reservation is gone.
// readoptTimeout bounds a node's taking its recent orders again (readopt).
const readoptTimeout = time.Minute

// readoptWidth is how many of its recent orders a node takes again at once (readopt).
const readoptWidth = 16

func (h PlaceOrderHandler) readopt(ctx context.Context, tenantID, saleID uuid.UUID) {
	if h.readopting != nil { // once at a time per sale: the requests that learn of it together
		if _, busy := h.readopting.LoadOrStore(saleID, true); busy {
			return
		}
		defer h.readopting.Delete(saleID)
	}
	// The node has forgotten its floor: this is its one chance to take its recent orders again,
	// so the buyer hanging up must not cut it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readoptTimeout)
	defer cancel()
	// The rebuild's fence may be over (this node may learn of it late): new purchases wait again,
	// and the stock is taken before anything slower (the rebuild reads PostgreSQL, which a
	// storm of logins after a Redis loss may keep busy for seconds). The fence is held until
	// every recent order is taken again, however long that takes under load.
	fence := func() {
		if err := h.Stock.Inventory.Fence(ctx, tenantID, saleID, h.Now().Add(h.Stock.Fence)); err != nil {
			h.Log.WarnContext(ctx, "sale not fenced for this node's recent orders", "sale_id", saleID, "err", err)
		}
	}
	fence()
	held := make(chan struct{})
	defer close(held)
	go func() {
		tick := time.NewTicker(max(h.Stock.Fence/3, 50*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-held:
				return
			case <-tick.C:
				fence()
			}
		}
	}()
	recent := h.Queue.Recent(tenantID, saleID)
	adopted, refused := 0, map[domain.Code]int{}
	// adopt takes rs's stock again, readoptWidth at a time: one by one, each waits its turn
	// for a connection behind every purchase of the storm that follows a loss (100 orders took
	// 8 s so), and new purchases wait on the fence meanwhile. The stock they need is held for
	// them whatever the order (the fence keeps new purchases out).
	adopt := func(rs []domain.Reservation) (marked []domain.Reservation) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		slots := make(chan struct{}, readoptWidth)
		for _, r := range rs {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				_, ok, err := h.Stock.Inventory.Adopt(ctx, r)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case ok:
					adopted++
				case errors.Is(err, domain.ErrUnavailable), errors.Is(err, domain.ErrSaleNotFound):
					marked = append(marked, r) // marked rolled back, or gone: after the rebuild
				case err != nil && domain.CodeOf(err) != "":
					refused[domain.CodeOf(err)]++
				case err != nil:
					h.Log.WarnContext(ctx, "recent order not adopted; the worker will", "order_id", r.OrderID, "err", err)
				}
			})
		}
		wg.Wait()
		slices.SortFunc(marked, func(a, b domain.Reservation) int { return a.CreatedAt.Compare(b.CreatedAt) })
		return marked
	}
	if marked := adopt(recent); len(marked) > 0 {
		if err := h.Stock.RestoreSale(ctx, tenantID, saleID); err != nil {
			h.Log.WarnContext(ctx, "rolled-back inventory not rebuilt by this node; the worker will", "sale_id", saleID, "err", err)
		}
		fence()
		refused[domain.ErrUnavailable.Code] += len(adopt(marked)) // left to the worker
	}
	for _, r := range recent {
		if err := h.Queue.EnqueueOrder(ctx, r); err != nil && !errors.Is(err, ports.ErrAlreadyQueued) {
			h.Log.WarnContext(ctx, "recent order not queued again", "order_id", r.OrderID, "err", err)
		}
	}
	h.Log.WarnContext(ctx, "the inventory store rolled back: sale rebuilt, this node's recent orders taken again and queued",
		"sale_id", saleID, "recent", len(recent), "adopted", adopted, "refused", refused)
}

// worthReplaying reports whether an answer is final for its key: an accepted order or a refusal
// that a retry would meet again. "Not started yet" is not final: the same purchase may be retried
// with the same key once the sale opens. Unexpected failures are not answers.
func worthReplaying(err error) bool {
	if err == nil {
		return true
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Transient {
		return false
	}
	switch de.Code {
	case domain.ErrSoldOut.Code, domain.ErrInsufficientStock.Code, domain.ErrSaleNotActive.Code,
		domain.ErrPurchaseLimitExceeded.Code:
		return true
	}
	return false
}

func replay(rec ports.IdempotencyRecord, fingerprint string) (PlaceOrderResult, error) {
	switch {
	case rec.Fingerprint != fingerprint:
		return PlaceOrderResult{}, domain.ErrIdempotencyKeyReused.WithDetail("the key was first used with a different request")
	case !rec.Done:
		return PlaceOrderResult{}, domain.ErrIdempotencyInFlight.WithDetail("a request with this key is still being processed; retry shortly")
	case rec.Outcome.Order != nil:
		return PlaceOrderResult{Order: *rec.Outcome.Order, Replayed: true}, nil
	default:
		return PlaceOrderResult{Replayed: true}, &domain.Error{Code: rec.Outcome.ErrCode, Detail: rec.Outcome.ErrDetail}
	}
}

// accepted reports the stock change and queues the order. Once the script has run the order is
// accepted: if queueing fails, the reconciler finds the reservation and queues it.
func (h PlaceOrderHandler) accepted(ctx context.Context, res ports.ReserveResult) {
	r := res.Reservation
	if !res.Duplicate {
		h.Live.StockChanged(r.TenantID, r.SaleID)
		if res.Remaining == 0 {
			h.soldOut(ctx, r.TenantID, r.SaleID)
		}
	}
	if r.Status == domain.OrderPending || r.Status == "" {
		if err := h.Queue.EnqueueOrder(ctx, r); err != nil && !errors.Is(err, ports.ErrAlreadyQueued) {
			// Accepted all the same: the reservation is durable and awaited, and the worker
			// queues it (at the latest once this node's lease ends, or after the grace).
			h.Log.WarnContext(ctx, "accepted order not queued yet", "order_id", r.OrderID, "err", err)
		}
	}
}

// soldOut tells live clients the sale just ended by selling its last unit. Only the purchase that
// took the last unit sees remaining 0, so this fires once per sell-out.
func (h PlaceOrderHandler) soldOut(ctx context.Context, tenantID, saleID uuid.UUID) {
	h.Room.SoldOut(ctx, tenantID, saleID) // first: it reads the sale from the cache, not PostgreSQL
	s, err := h.Sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		h.Log.WarnContext(ctx, "sold-out event not broadcast", "sale_id", saleID, "err", err)
		return
	}
	h.SoldOutSales.Mark(tenantID, saleID, s.EndsAt)
	now := h.Now()
	publish(ctx, h.Live, h.Log, domain.LiveEvent{Type: domain.LiveSaleEnded, TenantID: tenantID, SaleID: saleID,
		TS: now, Data: saleTimes(s, now, 0, "sold_out")})
}
