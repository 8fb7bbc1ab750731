package http

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// BenchmarkValidatePurchase is the spec validation alone (placeOrder's compiled check: path
// parameter, headers, JSON body, caller) of a valid purchase, in front of a handler that does
// nothing.
func BenchmarkValidatePurchase(b *testing.B) { benchValidatePurchase(b, true) }

// BenchmarkValidatePurchaseFull is the same by kin-openapi alone (what every request took before
// placeOrder's compiled check).
func BenchmarkValidatePurchaseFull(b *testing.B) { benchValidatePurchase(b, false) }

func benchValidatePurchase(b *testing.B, compiled bool) {
	mw, err := newValidator(slog.New(slog.DiscardHandler), compiled)
	if err != nil {
		b.Fatal(err)
	}
	reached := 0
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached++
		w.WriteHeader(http.StatusAccepted)
	}))
	buyer := authResult{present: true, principal: domain.Principal{UserID: uuid.New(), Role: domain.RoleShopper}}
	const path = "/v1/sales/01932c4e-8f7a-7cc1-9a4b-2f1e3d4c5b6a/orders"
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"quantity":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer x")
		req.Header.Set("Idempotency-Key", "bench-key-0001")
		req = req.WithContext(context.WithValue(req.Context(), principalKey{}, buyer)) // as authenticate leaves it
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if reached == 0 {
		b.Fatal("the handler was never reached")
	}
}
