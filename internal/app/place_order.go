package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
}

// PlaceOrderHandler handles PlaceOrder: the hot path of a flash sale.
type PlaceOrderHandler struct {
	Sales       ports.SaleRepository
	Inventory   ports.InventoryStore
	Idempotency ports.IdempotencyStore
	Queue       ports.OrderQueue
	Now         func() time.Time
	Log         *slog.Logger
	// IdempotencyLease bounds how long a crashed request keeps its key busy.
	IdempotencyLease time.Duration
	// IdempotencyTTL is how long answers are kept for replay.
	IdempotencyTTL time.Duration
	// Feed and Broadcaster push the stock change and a sell-out to live clients (optional).
	Feed        *LiveFeed
	Broadcaster ports.Broadcaster
	// Purchases, if set, claims and reserves in one round trip.
	Purchases ports.PurchaseStore
	// Dispatcher queues accepted orders off the request path.
	Dispatcher *OrderDispatcher
}

// Handle reserves the stock atomically in Redis and queues the order for PostgreSQL.
//
// Idempotency works at two levels. The key is first claimed per user, which catches a key reused
// with another request and a retry racing the first. The reservation script then records the
// key within the sale, so even when a claim expired (a crash mid-request) a retry finds the
// first order instead of taking stock twice.
func (h PlaceOrderHandler) Handle(ctx context.Context, cmd PlaceOrder) (PlaceOrderResult, error) {
	if cmd.Principal.Role != domain.RoleShopper {
		return PlaceOrderResult{}, domain.ErrForbidden.WithDetail("only shoppers buy")
	}
	if cmd.Quantity < 1 {
		return PlaceOrderResult{}, domain.ErrInvalidRequest.WithDetail("quantity must be at least 1")
	}
	scope := ports.IdempotencyScope{TenantID: cmd.Principal.TenantID, UserID: cmd.Principal.UserID, Key: cmd.IdempotencyKey}
	fp := cmd.fingerprint()
	r := domain.Reservation{
		OrderID: uuid.Must(uuid.NewV7()), TenantID: cmd.Principal.TenantID, SaleID: cmd.SaleID,
		UserID: cmd.Principal.UserID, Quantity: cmd.Quantity, IdempotencyKey: cmd.IdempotencyKey,
	}
	existing, res, rerr, err := h.claimAndReserve(ctx, scope, fp, r)
	if err != nil {
		return PlaceOrderResult{}, fmt.Errorf("place order: claim idempotency key: %w", err)
	}
	if existing != nil {
		h.settleUnclaimed(ctx, existing, fp, res, rerr)
		return replay(*existing, fp)
	}

	order, err := h.finish(ctx, r, res, rerr)
	if !worthReplaying(err) {
		if ferr := h.Idempotency.Forget(ctx, scope); ferr != nil {
			h.Log.WarnContext(ctx, "idempotency claim kept until its lease ends", "err", ferr)
		}
		return PlaceOrderResult{}, err
	}
	rec := ports.IdempotencyRecord{Fingerprint: fp, Done: true}
	if err != nil {
		var de *domain.Error
		errors.As(err, &de)
		rec.Outcome = ports.PlaceOrderOutcome{ErrCode: de.Code, ErrDetail: de.Detail}
	} else {
		rec.Outcome = ports.PlaceOrderOutcome{Order: &order}
	}
	if cerr := h.Idempotency.Complete(ctx, scope, rec, h.IdempotencyTTL); cerr != nil {
		// The reservation itself is idempotent, so a retry still finds this order.
		h.Log.WarnContext(ctx, "idempotency answer not stored", "err", cerr)
	}
	return PlaceOrderResult{Order: order}, err
}

// errNotReserved: the claim found the key, so the two-step path did not reserve.
var errNotReserved = errors.New("not reserved: the idempotency key was known")

// claimAndReserve claims the key and reserves: in one round trip when a PurchaseStore can, else
// claim first and reserve only if the key was free.
func (h PlaceOrderHandler) claimAndReserve(ctx context.Context, scope ports.IdempotencyScope, fp string,
	r domain.Reservation) (*ports.IdempotencyRecord, ports.ReserveResult, error, error) {
	if h.Purchases != nil {
		return h.Purchases.ClaimAndReserve(ctx, scope, fp, h.IdempotencyLease, r)
	}
	existing, err := h.Idempotency.Claim(ctx, scope, fp, h.IdempotencyLease)
	if err != nil || existing != nil {
		return existing, ports.ReserveResult{}, errNotReserved, err
	}
	res, rerr := h.Inventory.Reserve(ctx, r)
	return nil, res, rerr, nil
}

// settleUnclaimed deals with a reservation made in the same round trip as a claim that found
// the key already used. The reservation script dedups by key within a sale, so stock was taken
// only if the first request was refused or was for another sale: that stock goes back, since
// the answer is the first request's. If the first request is still running for the same
// purchase, the reservation is the order it will answer with: it is kept and queued.
func (h PlaceOrderHandler) settleUnclaimed(ctx context.Context, existing *ports.IdempotencyRecord, fp string,
	res ports.ReserveResult, rerr error) {
	if rerr != nil || res.Duplicate {
		return
	}
	if !existing.Done && existing.Fingerprint == fp {
		h.accepted(ctx, res)
		return
	}
	// Only the one-round-trip path reserves alongside a known key, so Purchases is set here.
	if _, err := h.Purchases.Discard(ctx, res.Reservation); err != nil {
		h.Log.ErrorContext(ctx, "stock taken for a replayed request not given back", "order_id", res.Reservation.OrderID, "err", err)
	}
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

// finish completes the reservation: it seeds the inventory of a sale Redis does not know and
// tries once more, and sets an accepted order on its way.
func (h PlaceOrderHandler) finish(ctx context.Context, r domain.Reservation, res ports.ReserveResult, err error) (domain.Order, error) {
	if errors.Is(err, domain.ErrSaleNotFound) {
		// Redis does not know the sale: it may exist in PostgreSQL only.
		s, serr := h.Sales.Sale(ctx, r.TenantID, r.SaleID)
		if serr != nil {
			return domain.Order{}, serr
		}
		if _, serr := (stock{h.Sales, h.Inventory}).seed(ctx, s); serr != nil {
			return domain.Order{}, fmt.Errorf("place order: %w", serr)
		}
		res, err = h.Inventory.Reserve(ctx, r)
	}
	if err != nil {
		if domain.CodeOf(err) != "" {
			return domain.Order{}, err
		}
		return domain.Order{}, fmt.Errorf("place order: reserve stock: %w", err)
	}
	h.accepted(ctx, res)
	return res.Reservation.Order(), nil
}

// accepted reports the stock change and queues the order. Once the script has run the order is
// accepted: if queueing fails, the reconciler finds the reservation and queues it.
func (h PlaceOrderHandler) accepted(ctx context.Context, res ports.ReserveResult) {
	r := res.Reservation
	if !res.Duplicate {
		h.Feed.InventoryChanged(r.TenantID, r.SaleID)
		if res.Remaining == 0 {
			h.soldOut(ctx, r.TenantID, r.SaleID)
		}
	}
	if r.Status == domain.OrderPending || r.Status == "" {
		h.Dispatcher.Dispatch(ctx, r)
	}
}

// soldOut tells live clients the sale just ended by selling its last unit. Only the purchase that
// took the last unit sees remaining 0, so this fires once per sell-out.
func (h PlaceOrderHandler) soldOut(ctx context.Context, tenantID, saleID uuid.UUID) {
	if h.Broadcaster == nil {
		return
	}
	s, err := h.Sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		h.Log.WarnContext(ctx, "sold-out event not broadcast", "sale_id", saleID, "err", err)
		return
	}
	now := h.Now()
	broadcast(ctx, h.Broadcaster, h.Log, domain.LiveEvent{Type: domain.LiveSaleEnded, TenantID: tenantID, SaleID: saleID,
		TS: now, Data: saleTimes(s, now, 0, "sold_out")})
}
