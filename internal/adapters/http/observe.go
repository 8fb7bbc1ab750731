package http

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/openapi"
)

// RequestObserver is told of every answered request (the metrics adapter implements it). Its
// labels are bounded: operation is a spec operation id or one of the Operation* names, and
// outcome one of the Purchase* names.
type RequestObserver interface {
	// Request counts one answered request of operation with status code, and how long it took.
	Request(operation string, code int, d time.Duration)
	// Purchase counts one answer of placeOrder by outcome.
	Purchase(outcome string)
}

// Operations that are not in the spec.
const (
	OperationMetrics   = "metrics"   // GET /metrics
	OperationLive      = "live"      // the WebSocket at /v1/ws
	OperationOpenAPI   = "openapi"   // GET /openapi.yaml
	OperationStatic    = "static"    // the storefront and /docs
	OperationUnmatched = "unmatched" // no route: 404 and 405
)

// Outcomes of a purchase (placeOrder), as RequestObserver.Purchase counts them.
const (
	PurchaseAccepted    = "accepted"     // 202: the stock is taken
	PurchaseReplayed    = "replayed"     // the answer to an earlier request with the same key
	PurchaseSoldOut     = "sold_out"     // 409 sold-out or insufficient-stock
	PurchaseLimit       = "limit"        // 409 purchase-limit-exceeded
	PurchaseNotActive   = "not_active"   // the sale has not started or has ended
	PurchaseRateLimited = "rate_limited" // 429: refused at the edge before the store was asked
	PurchaseRejected    = "rejected"     // any other 4xx (invalid, unauthenticated, ...)
	PurchaseFailed      = "failed"       // 5xx
)

// PurchaseOutcomes lists every outcome, so a collector can expose each from the start.
var PurchaseOutcomes = []string{PurchaseAccepted, PurchaseReplayed, PurchaseSoldOut, PurchaseLimit,
	PurchaseNotActive, PurchaseRateLimited, PurchaseRejected, PurchaseFailed}

const placeOrderOperation = "placeOrder"

// Operations lists the operation ids of the spec and the Operation* names: every value the
// operation label takes.
func Operations() ([]string, error) {
	routes, err := operationRoutes()
	if err != nil {
		return nil, err
	}
	out := []string{OperationMetrics, OperationLive, OperationOpenAPI, OperationStatic, OperationUnmatched}
	for _, op := range routes {
		out = append(out, op)
	}
	return out, nil
}

// operationRoutes maps "METHOD pattern" (chi's pattern is the spec's path) to the operation id.
func operationRoutes() (map[string]string, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi spec: %w", err)
	}
	routes := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			routes[method+" "+path] = op.OperationID
		}
	}
	return routes, nil
}

type requestRecordKey struct{}

// noteProblem records the problem a request is answered with (newProblem calls it).
func noteProblem(ctx context.Context, code domain.Code) {
	if rec, ok := ctx.Value(requestRecordKey{}).(*statusWriter); ok {
		rec.problem = code
	}
}

// observeRequests tells obs of every request once answered: the operation, found from the route
// chi matched, the status, the time taken and, for a purchase, its outcome.
func observeRequests(obs RequestObserver) (func(http.Handler) http.Handler, error) {
	routes, err := operationRoutes()
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			r = r.WithContext(context.WithValue(r.Context(), requestRecordKey{}, sw))
			defer func() {
				op := operationOf(routes, r)
				code := sw.status
				if code == 0 {
					code = http.StatusOK
				}
				obs.Request(op, code, time.Since(start))
				if op == placeOrderOperation {
					obs.Purchase(purchaseOutcome(code, sw.problem, sw.Header().Get("Idempotent-Replayed") == "true"))
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}, nil
}

func operationOf(routes map[string]string, r *http.Request) string {
	pattern := ""
	if rc := chi.RouteContext(r.Context()); rc != nil {
		pattern = rc.RoutePattern()
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if op, ok := routes[method+" "+pattern]; ok {
		return op
	}
	switch {
	case pattern == "":
		return OperationUnmatched
	case pattern == "/metrics":
		return OperationMetrics
	case pattern == "/v1/ws":
		return OperationLive
	case pattern == "/openapi.yaml":
		return OperationOpenAPI
	}
	return OperationStatic
}

func purchaseOutcome(code int, problem domain.Code, replayed bool) string {
	switch {
	case replayed:
		return PurchaseReplayed
	case code == http.StatusAccepted:
		return PurchaseAccepted
	case code == http.StatusTooManyRequests:
		return PurchaseRateLimited
	case code >= 500:
		return PurchaseFailed
	}
	switch problem {
	case domain.ErrSoldOut.Code, domain.ErrInsufficientStock.Code:
		return PurchaseSoldOut
	case domain.ErrPurchaseLimitExceeded.Code:
		return PurchaseLimit
	case domain.ErrSaleNotActive.Code:
		return PurchaseNotActive
	}
	return PurchaseRejected
}

// statusWriter remembers the status answered and, through the request context, the problem
// (one allocation for both).
type statusWriter struct {
	http.ResponseWriter
	status  int
	problem domain.Code
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 && (status >= 200 || status == http.StatusSwitchingProtocols) {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController and the WebSocket handshake reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }
