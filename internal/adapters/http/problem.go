package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/domain"
)

// ProblemBase prefixes every problem type; the last path segment names the problem.
const ProblemBase = "https://flashsale.dev/problems/"

// Problem codes that exist only at the HTTP edge.
const (
	codeNotFound             domain.Code = "not-found"
	codeMethodNotAllowed     domain.Code = "method-not-allowed"
	codePayloadTooLarge      domain.Code = "payload-too-large"
	codeUnsupportedMediaType domain.Code = "unsupported-media-type"
	codeCrossOrigin          domain.Code = "cross-origin-request-rejected"
	codeOriginNotAllowed     domain.Code = "origin-not-allowed"
	codeRateLimited          domain.Code = "rate-limited"
	codeHeadersTooLarge      domain.Code = "headers-too-large"
	codeInternal             domain.Code = "internal"
)

// codeUnavailable is a dependency down or a request that cannot be taken safely now.
var codeUnavailable = domain.ErrUnavailable.Code

type problemKind struct {
	status int
	title  string
}

// problemKinds is the one table from error codes to HTTP answers.
var problemKinds = map[domain.Code]problemKind{
	domain.ErrInvalidRequest.Code:        {http.StatusBadRequest, "Invalid request"},
	domain.ErrUnauthenticated.Code:       {http.StatusUnauthorized, "Authentication required"},
	domain.ErrInvalidCredentials.Code:    {http.StatusUnauthorized, "Invalid credentials"},
	domain.ErrInvalidRefreshToken.Code:   {http.StatusUnauthorized, "Invalid refresh token"},
	domain.ErrRefreshTokenReused.Code:    {http.StatusUnauthorized, "Refresh token reused"},
	codeCrossOrigin:                      {http.StatusForbidden, "Cross-origin request rejected"},
	codeOriginNotAllowed:                 {http.StatusForbidden, "Origin not allowed"},
	domain.ErrForbidden.Code:             {http.StatusForbidden, "Forbidden"},
	codeNotFound:                         {http.StatusNotFound, "Not found"},
	domain.ErrTenantNotFound.Code:        {http.StatusNotFound, "Tenant not found"},
	domain.ErrUserNotFound.Code:          {http.StatusNotFound, "User not found"},
	domain.ErrSaleNotFound.Code:          {http.StatusNotFound, "Sale not found"},
	domain.ErrOrderNotFound.Code:         {http.StatusNotFound, "Order not found"},
	codeMethodNotAllowed:                 {http.StatusMethodNotAllowed, "Method not allowed"},
	domain.ErrEmailTaken.Code:            {http.StatusConflict, "Email already registered"},
	domain.ErrStockBelowSold.Code:        {http.StatusConflict, "Stock below units sold"},
	domain.ErrSoldOut.Code:               {http.StatusConflict, "Sold out"},
	domain.ErrInsufficientStock.Code:     {http.StatusConflict, "Not enough stock"},
	domain.ErrSaleNotActive.Code:         {http.StatusConflict, "Sale not active"},
	domain.ErrPurchaseLimitExceeded.Code: {http.StatusConflict, "Purchase limit exceeded"},
	domain.ErrIdempotencyInFlight.Code:   {http.StatusConflict, "Request still in flight"},
	domain.ErrOrderNotRetryable.Code:     {http.StatusConflict, "Order not retryable"},
	codePayloadTooLarge:                  {http.StatusRequestEntityTooLarge, "Payload too large"},
	codeUnsupportedMediaType:             {http.StatusUnsupportedMediaType, "Unsupported media type"},
	domain.ErrInvalidSaleWindow.Code:     {http.StatusUnprocessableEntity, "Invalid sale window"},
	domain.ErrIdempotencyKeyReused.Code:  {http.StatusUnprocessableEntity, "Idempotency key reused"},
	domain.ErrWeakPassword.Code:          {http.StatusUnprocessableEntity, "Weak password"},
	codeRateLimited:                      {http.StatusTooManyRequests, "Too many requests"},
	codeHeadersTooLarge:                  {http.StatusRequestHeaderFieldsTooLarge, "Request headers too large"},
	codeInternal:                         {http.StatusInternalServerError, "Internal server error"},
	codeUnavailable:                      {http.StatusServiceUnavailable, "Service unavailable"},
}

// problemOf builds the problem for an error. Expected (domain) errors show their detail;
// anything else is logged with the request id and answered with a bare 500.
func problemOf(ctx context.Context, log *slog.Logger, err error) api.Problem {
	var de *domain.Error
	if errors.As(err, &de) {
		if _, known := problemKinds[de.Code]; known {
			return newProblem(ctx, de.Code, de.Detail)
		}
	}
	log.ErrorContext(ctx, "request failed", "err", err, "request_id", middleware.GetReqID(ctx))
	return newProblem(ctx, codeInternal, "")
}

func newProblem(ctx context.Context, code domain.Code, detail string) api.Problem {
	kind, ok := problemKinds[code]
	if !ok {
		kind = problemKinds[codeInternal]
	}
	p := api.Problem{Type: ProblemBase + string(code), Title: kind.title, Status: kind.status}
	if detail != "" {
		p.Detail = &detail
	}
	if id := middleware.GetReqID(ctx); id != "" {
		p.RequestId = &id
	}
	return p
}

// writeProblem answers a request with a problem document.
func writeProblem(w http.ResponseWriter, p api.Problem, header http.Header) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flashsale"`)
	}
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1") // what is unavailable is expected back within seconds
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// problemResponse is a problem as a strict-server response of any operation. Only statuses the
// spec declares for an operation are produced for it; the end-to-end tests check every answer
// against the spec.
type problemResponse struct {
	problem api.Problem
	header  http.Header
	cookies []*http.Cookie
}

func (p problemResponse) write(w http.ResponseWriter) error {
	for _, c := range p.cookies {
		http.SetCookie(w, c)
	}
	writeProblem(w, p.problem, p.header)
	return nil
}

func (p problemResponse) VisitGetHealthResponse(w http.ResponseWriter) error       { return p.write(w) }
func (p problemResponse) VisitGetReadinessResponse(w http.ResponseWriter) error    { return p.write(w) }
func (p problemResponse) VisitRegisterResponse(w http.ResponseWriter) error        { return p.write(w) }
func (p problemResponse) VisitLoginResponse(w http.ResponseWriter) error           { return p.write(w) }
func (p problemResponse) VisitGetMeResponse(w http.ResponseWriter) error           { return p.write(w) }
func (p problemResponse) VisitListSalesResponse(w http.ResponseWriter) error       { return p.write(w) }
func (p problemResponse) VisitGetSaleResponse(w http.ResponseWriter) error         { return p.write(w) }
func (p problemResponse) VisitGetInventoryResponse(w http.ResponseWriter) error    { return p.write(w) }
func (p problemResponse) VisitPlaceOrderResponse(w http.ResponseWriter) error      { return p.write(w) }
func (p problemResponse) VisitListOrdersResponse(w http.ResponseWriter) error      { return p.write(w) }
func (p problemResponse) VisitGetOrderResponse(w http.ResponseWriter) error        { return p.write(w) }
func (p problemResponse) VisitCreateSaleResponse(w http.ResponseWriter) error      { return p.write(w) }
func (p problemResponse) VisitUpdateSaleResponse(w http.ResponseWriter) error      { return p.write(w) }
func (p problemResponse) VisitListDeadLettersResponse(w http.ResponseWriter) error { return p.write(w) }
func (p problemResponse) VisitRetryDeadLetterResponse(w http.ResponseWriter) error { return p.write(w) }
func (p problemResponse) VisitRefreshTokensResponse(w http.ResponseWriter) error   { return p.write(w) }
func (p problemResponse) VisitLogoutResponse(w http.ResponseWriter) error          { return p.write(w) }
func (p problemResponse) VisitLogoutAllResponse(w http.ResponseWriter) error       { return p.write(w) }
func (p problemResponse) VisitGetSaleStatsResponse(w http.ResponseWriter) error    { return p.write(w) }
func (p problemResponse) VisitIssueWebSocketTicketResponse(w http.ResponseWriter) error {
	return p.write(w)
}
