package http_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPlaceOrderRouter is the HTTP layer of a purchase on in-memory ports: routing,
// authentication, spec validation of headers and body, the strict handler and the JSON answer.
func BenchmarkPlaceOrderRouter(b *testing.B) { benchPlaceOrder(b, newFuzzApp(b)) }

// BenchmarkPlaceOrderRouterObserved is the same with a request observer: what observing each
// request (route to operation id, status, time, the purchase's outcome) adds.
func BenchmarkPlaceOrderRouterObserved(b *testing.B) {
	benchPlaceOrder(b, newFuzzAppObserved(b, &countingObserver{}))
}

// countingObserver counts, as cheaply as the metrics adapter's resolved children do.
type countingObserver struct{ requests, purchases atomic.Int64 }

func (o *countingObserver) Request(string, int, time.Duration) { o.requests.Add(1) }
func (o *countingObserver) Purchase(string)                    { o.purchases.Add(1) }

func benchPlaceOrder(b *testing.B, a *fuzzApp) {
	path := "/v1/sales/" + fuzzSaleID.String() + "/orders"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"quantity":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		req.Header.Set("Idempotency-Key", "bench-key-"+strconv.Itoa(i))
		w := httptest.NewRecorder()
		a.router.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkRejectInvalidBody is the validator refusing a malformed purchase.
func BenchmarkRejectInvalidBody(b *testing.B) {
	a := newFuzzApp(b)
	path := "/v1/sales/" + fuzzSaleID.String() + "/orders"
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"quantity":0}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		req.Header.Set("Idempotency-Key", "bench-key-invalid")
		w := httptest.NewRecorder()
		a.router.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			b.Fatalf("status %d", w.Code)
		}
	}
}
