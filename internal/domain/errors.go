package domain

import "errors"

// Code names a problem the system expects and answers deliberately; it becomes the last path
// segment of the problem+json `type` URI, so a code never changes once published.
type Code string

// Error is an expected, classified failure. Adapters map it to a transport status through its
// Code; anything that is not an *Error is unexpected and is logged, never shown.
type Error struct {
	Code   Code
	Detail string
	// Transient: the same request may succeed later (the sale has not started yet), so its
	// answer is not final and not replayed.
	Transient bool
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Detail
}

// Is lets errors.Is match on the code alone, so a detailed error still matches its sentinel.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// WithDetail returns a copy of e with a human-readable detail.
func (e *Error) WithDetail(detail string) *Error {
	return &Error{Code: e.Code, Detail: detail, Transient: e.Transient}
}

// CodeOf returns the code of an expected error, or "" for an unexpected one.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

var (
	ErrInvalidRequest        = &Error{Code: "invalid-request"}
	ErrUnauthenticated       = &Error{Code: "unauthenticated"}
	ErrInvalidCredentials    = &Error{Code: "invalid-credentials"}
	ErrForbidden             = &Error{Code: "forbidden"}
	ErrTenantNotFound        = &Error{Code: "tenant-not-found"}
	ErrUserNotFound          = &Error{Code: "user-not-found"}
	ErrSaleNotFound          = &Error{Code: "sale-not-found"}
	ErrOrderNotFound         = &Error{Code: "order-not-found"}
	ErrEmailTaken            = &Error{Code: "email-taken"}
	ErrInvalidSaleWindow     = &Error{Code: "invalid-sale-window"}
	ErrStockBelowSold        = &Error{Code: "stock-below-sold"}
	ErrSoldOut               = &Error{Code: "sold-out"}
	ErrInsufficientStock     = &Error{Code: "insufficient-stock"}
	ErrSaleNotActive         = &Error{Code: "sale-not-active"}
	ErrPurchaseLimitExceeded = &Error{Code: "purchase-limit-exceeded"}
	ErrIdempotencyKeyReused  = &Error{Code: "idempotency-key-reused"}
	ErrIdempotencyInFlight   = &Error{Code: "idempotency-key-in-flight"}
	ErrOrderNotRetryable     = &Error{Code: "order-not-retryable"}
	ErrWeakPassword          = &Error{Code: "weak-password"}
	ErrInvalidRefreshToken   = &Error{Code: "invalid-refresh-token"}
	ErrRefreshTokenReused    = &Error{Code: "refresh-token-reused"}
	// The waiting room (waiting_room.go).
	ErrAdmissionRequired = &Error{Code: "admission-required"}
	ErrNotInQueue        = &Error{Code: "not-in-queue"}
	ErrNoWaitingRoom     = &Error{Code: "no-waiting-room"}
)

// ErrUnavailable: the system cannot take the request safely right now (a reservation that did
// not reach a Redis replica in time, a sale's inventory being rebuilt); the same request may
// succeed in a moment, so it is answered 503 with Retry-After and never replayed.
var ErrUnavailable = &Error{Code: "unavailable", Transient: true}

// ErrRateLimited: the client sent more requests than its rate limit allows; answered 429 with
// Retry-After, never replayed.
var ErrRateLimited = &Error{Code: "rate-limited", Transient: true}

// ErrPermanent marks a failure that retrying cannot fix (the order can never be written); the
// queue dead-letters the task at once instead of spending its attempts.
var ErrPermanent = errors.New("permanent failure")

// The two ways a sale is not active. Both carry the sale-not-active code; they differ in whether
// a client may usefully retry the same purchase later.
var (
	ErrSaleNotStarted = &Error{Code: ErrSaleNotActive.Code, Detail: "the sale has not started yet", Transient: true}
	ErrSaleEnded      = ErrSaleNotActive.WithDetail("the sale has ended")
)
