package http

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/flashsale/flashsale/internal/domain"
)

// TestPurchaseOutcome: each answer of placeOrder counts under one bounded outcome.
func TestPurchaseOutcome(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		code     int
		problem  domain.Code
		replayed bool
		want     string
	}{
		{http.StatusAccepted, "", false, PurchaseAccepted},
		{http.StatusAccepted, "", true, PurchaseReplayed},
		{http.StatusConflict, domain.ErrSoldOut.Code, true, PurchaseReplayed},
		{http.StatusConflict, domain.ErrSoldOut.Code, false, PurchaseSoldOut},
		{http.StatusConflict, domain.ErrInsufficientStock.Code, false, PurchaseSoldOut},
		{http.StatusConflict, domain.ErrPurchaseLimitExceeded.Code, false, PurchaseLimit},
		{http.StatusConflict, domain.ErrSaleNotActive.Code, false, PurchaseNotActive},
		{http.StatusTooManyRequests, codeRateLimited, false, PurchaseRateLimited},
		{http.StatusBadRequest, domain.ErrInvalidRequest.Code, false, PurchaseRejected},
		{http.StatusUnauthorized, "", false, PurchaseRejected},
		{http.StatusServiceUnavailable, "", false, PurchaseFailed},
	} {
		if got := purchaseOutcome(c.code, c.problem, c.replayed); got != c.want {
			t.Errorf("%d %s replayed=%v: %s, want %s", c.code, c.problem, c.replayed, got, c.want)
		}
		if !slices.Contains(PurchaseOutcomes, c.want) {
			t.Errorf("%s is not in PurchaseOutcomes", c.want)
		}
	}
}

// TestOperationOf: a route the spec declares is named by its operation id (HEAD as GET); the
// routes outside the spec by their fixed names; no route at all is "unmatched".
func TestOperationOf(t *testing.T) {
	t.Parallel()
	routes, err := operationRoutes()
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(middleware.GetHead) // as the API does: HEAD reaches the GET route
	var got string
	record := func(w http.ResponseWriter, r *http.Request) { got = operationOf(routes, r) }
	r.Post("/v1/sales/{saleId}/orders", record)
	r.Get("/v1/sales/{saleId}", record)
	r.Get("/metrics", record)
	r.Get("/assets/*", record)
	r.NotFound(record)
	for _, c := range []struct{ method, path, want string }{
		{http.MethodPost, "/v1/sales/0190a5b4-6c4e-7d3a-9f2b-1c2d3e4f5a6b/orders", "placeOrder"},
		{http.MethodGet, "/v1/sales/0190a5b4-6c4e-7d3a-9f2b-1c2d3e4f5a6b", "getSale"},
		{http.MethodHead, "/v1/sales/0190a5b4-6c4e-7d3a-9f2b-1c2d3e4f5a6b", "getSale"},
		{http.MethodGet, "/metrics", OperationMetrics},
		{http.MethodGet, "/assets/app.js", OperationStatic},
		{http.MethodGet, "/no/such/thing", OperationUnmatched},
	} {
		got = ""
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
		if got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
	ops, err := Operations()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ops, "placeOrder") || !slices.Contains(ops, OperationUnmatched) {
		t.Errorf("Operations() = %v", ops)
	}
}
