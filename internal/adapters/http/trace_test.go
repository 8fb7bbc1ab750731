package http

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// BenchmarkTraceRequestsOff is what the request span costs with tracing off (otel's no-op
// provider, no incoming traceparent): the whole of tracing's share of a purchase's HTTP layer
// but the span naming.
func BenchmarkTraceRequestsOff(b *testing.B) {
	h := traceRequests(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if trace.SpanContextFromContext(r.Context()).IsValid() {
			b.Fatal("a span with tracing off")
		}
	}))
	req := httptest.NewRequest(http.MethodPost, "/v1/sales/x/orders", http.NoBody)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
