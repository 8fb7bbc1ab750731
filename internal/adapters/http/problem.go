package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

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
	codeHeadersTooLarge      domain.Code = "headers-too-large"
	codeInternal             domain.Code = "internal"
	// Answered by what sits under the handlers: net/http's server (NewListener) and the file
	// server and WebSocket handshake (answerErrorsAsProblems).
	codePreconditionFailed  domain.Code = "precondition-failed"
	codeRangeNotSatisfiable domain.Code = "range-not-satisfiable"
	codeExpectationFailed   domain.Code = "expectation-failed"
	codeUpgradeRequired     domain.Code = "upgrade-required"
	codeNotImplemented      domain.Code = "not-implemented"
	codeHTTPVersionNotSupp  domain.Code = "http-version-not-supported"
)

// codeUnavailable is a dependency down or a request that cannot be taken safely now.
var codeUnavailable = domain.ErrUnavailable.Code

// codeRateLimited is a client over its rate limit (the edge's gate, or the purchase's own).
var codeRateLimited = domain.ErrRateLimited.Code

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
	domain.ErrAdmissionRequired.Code:     {http.StatusForbidden, "Admission required"},
	domain.ErrNotInQueue.Code:            {http.StatusNotFound, "Not in the waiting room"},
	domain.ErrNoWaitingRoom.Code:         {http.StatusConflict, "The sale has no waiting room"},
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
	codePreconditionFailed:               {http.StatusPreconditionFailed, "Precondition failed"},
	codePayloadTooLarge:                  {http.StatusRequestEntityTooLarge, "Payload too large"},
	codeUnsupportedMediaType:             {http.StatusUnsupportedMediaType, "Unsupported media type"},
	codeRangeNotSatisfiable:              {http.StatusRequestedRangeNotSatisfiable, "Range not satisfiable"},
	codeExpectationFailed:                {http.StatusExpectationFailed, "Expectation failed"},
	domain.ErrInvalidSaleWindow.Code:     {http.StatusUnprocessableEntity, "Invalid sale window"},
	domain.ErrIdempotencyKeyReused.Code:  {http.StatusUnprocessableEntity, "Idempotency key reused"},
	domain.ErrWeakPassword.Code:          {http.StatusUnprocessableEntity, "Weak password"},
	codeUpgradeRequired:                  {http.StatusUpgradeRequired, "Upgrade required"},
	codeRateLimited:                      {http.StatusTooManyRequests, "Too many requests"},
	codeHeadersTooLarge:                  {http.StatusRequestHeaderFieldsTooLarge, "Request headers too large"},
	codeInternal:                         {http.StatusInternalServerError, "Internal server error"},
	codeNotImplemented:                   {http.StatusNotImplemented, "Not implemented"},
	codeUnavailable:                      {http.StatusServiceUnavailable, "Service unavailable"},
	codeHTTPVersionNotSupp:               {http.StatusHTTPVersionNotSupported, "HTTP version not supported"},
}

// statusCodes name the problem of an error status that code under the handlers chose without
// saying why (the general problem where the table has several for the status).
var statusCodes = map[int]domain.Code{
	http.StatusBadRequest:                   domain.ErrInvalidRequest.Code,
	http.StatusUnauthorized:                 domain.ErrUnauthenticated.Code,
	http.StatusForbidden:                    domain.ErrForbidden.Code,
	http.StatusNotFound:                     codeNotFound,
	http.StatusMethodNotAllowed:             codeMethodNotAllowed,
	http.StatusPreconditionFailed:           codePreconditionFailed,
	http.StatusRequestEntityTooLarge:        codePayloadTooLarge,
	http.StatusUnsupportedMediaType:         codeUnsupportedMediaType,
	http.StatusRequestedRangeNotSatisfiable: codeRangeNotSatisfiable,
	http.StatusExpectationFailed:            codeExpectationFailed,
	http.StatusUpgradeRequired:              codeUpgradeRequired,
	http.StatusTooManyRequests:              codeRateLimited,
	http.StatusRequestHeaderFieldsTooLarge:  codeHeadersTooLarge,
	http.StatusInternalServerError:          codeInternal,
	http.StatusNotImplemented:               codeNotImplemented,
	http.StatusServiceUnavailable:           codeUnavailable,
	http.StatusHTTPVersionNotSupported:      codeHTTPVersionNotSupp,
}

// codeForStatus is statusCodes' problem for status, else one named after its status text
// ("Request Timeout": request-timeout).
func codeForStatus(status int) domain.Code {
	if code, ok := statusCodes[status]; ok {
		return code
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r == ' ' || r == '-':
			return '-'
		}
		return -1
	}, http.StatusText(status))
	if name == "" {
		name = "status-" + strconv.Itoa(status)
	}
	return domain.Code(name)
}

// statusProblem is the problem of a bare error status (codeForStatus).
func statusProblem(ctx context.Context, status int, detail string) api.Problem {
	code := codeForStatus(status)
	if _, known := problemKinds[code]; known {
		return newProblem(ctx, code, detail)
	}
	p := newProblem(ctx, codeInternal, detail)
	p.Type, p.Title, p.Status = ProblemBase+string(code), http.StatusText(status), status
	if p.Title == "" {
		p.Title = "Error " + strconv.Itoa(status)
	}
	return p
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
	noteProblem(ctx, code)
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

// Header values every answer of a kind shares (see securityHeaderValues).
var (
	problemJSONValue = []string{"application/problem+json"}
	noStoreValue     = []string{"no-store"}
)

// writeProblem answers a request with a problem document.
func writeProblem(w http.ResponseWriter, p api.Problem, header http.Header) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header()["Content-Type"] = problemJSONValue[:1:1]
	w.Header()["Cache-Control"] = noStoreValue[:1:1]
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
func (p problemResponse) VisitGetOverviewResponse(w http.ResponseWriter) error     { return p.write(w) }
func (p problemResponse) VisitIssueWebSocketTicketResponse(w http.ResponseWriter) error {
	return p.write(w)
}

// answerErrorsAsProblems makes every error answer a problem, whoever writes it: the handlers
// answer with problems already, but the file server behind the storefront and /docs (404, 412,
// 416) and the WebSocket handshake (426, 403, ...) answer in text/plain. An error status written
// with any other content type is answered with the problem of its status instead, and the body
// that came with it is dropped (it is the library's, not ours to show).
func answerErrorsAsProblems(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&problemWriter{ResponseWriter: w, r: r}, r)
	})
}

type problemWriter struct {
	http.ResponseWriter
	r       *http.Request
	wrote   bool
	replace bool // the status was answered with a problem: drop the body that follows
}

func (w *problemWriter) WriteHeader(status int) {
	switch {
	case w.wrote, status < 200: // a second status is net/http's to refuse; 1xx come before the final one
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.wrote = true
	if status < 400 || strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replace = true
	h := w.Header()
	for _, name := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Content-Range", "Last-Modified", "ETag"} {
		h.Del(name)
	}
	writeProblem(w.ResponseWriter, statusProblem(w.r.Context(), status, ""), nil)
}

func (w *problemWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replace {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController and the WebSocket handshake reach the connection (Flush,
// Hijack) through this writer.
func (w *problemWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *problemWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
