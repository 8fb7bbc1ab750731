package http

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// gateCall is what the gate asked the edge store.
type gateCall struct {
	rateKey   string
	perMinute int
	session   uuid.UUID
}

type recordingGate struct {
	calls  []gateCall
	active bool
}

func (g *recordingGate) Check(_ context.Context, rateKey string, perMinute int, sessionID uuid.UUID) (GateDecision, error) {
	g.calls = append(g.calls, gateCall{rateKey, perMinute, sessionID})
	return GateDecision{Allowed: true, Remaining: 4, SessionActive: g.active}, nil
}

type soldOutSet map[uuid.UUID]bool

func (s soldOutSet) Has(_, saleID uuid.UUID) bool { return s[saleID] }

// A purchase of a sale this node knows sold out is not counted against the rate limit (it is
// answered from memory), but its session is checked as ever: a revoked one is still a 401.
func TestGateSkipsTheRateLimitOfASoldOutSale(t *testing.T) {
	soldOut, open := uuid.New(), uuid.New()
	buyer := authResult{present: true, principal: domain.Principal{UserID: uuid.New(), TenantID: uuid.New(),
		SessionID: uuid.New(), Role: domain.RoleShopper}}
	cases := []struct {
		name     string
		sale     uuid.UUID
		who      authResult
		active   bool
		want     gateCall
		limited  bool // RateLimit headers sent
		unauthed bool // the request reaches the validator refused as unauthenticated
	}{
		{"sold out", soldOut, buyer, true, gateCall{"", 0, buyer.principal.SessionID}, false, false},
		{"sold out, session revoked", soldOut, buyer, false, gateCall{"", 0, buyer.principal.SessionID}, false, true},
		{"on sale", open, buyer, true, gateCall{"purchase:192.0.2.1", 5, buyer.principal.SessionID}, true, false},
		{"sold out, no token", soldOut, authResult{}, true, gateCall{"purchase:192.0.2.1", 5, uuid.Nil}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &recordingGate{active: c.active}
			var reached authResult
			h := gate(g, EdgeConfig{PurchasesPerMinute: 5, SoldOut: soldOutSet{soldOut: true}}, slog.New(slog.DiscardHandler))(
				http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
					reached, _ = r.Context().Value(principalKey{}).(authResult)
				}))
			req := httptest.NewRequest(http.MethodPost, "/v1/sales/"+c.sale.String()+"/orders", nil)
			req.RemoteAddr = "192.0.2.1:4321"
			req = req.WithContext(context.WithValue(req.Context(), principalKey{}, c.who))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if len(g.calls) != 1 || g.calls[0] != c.want {
				t.Fatalf("gate asked %+v, want %+v", g.calls, c.want)
			}
			if got := w.Header().Get("RateLimit-Limit") != ""; got != c.limited {
				t.Errorf("RateLimit headers sent: %v, want %v", got, c.limited)
			}
			if got := reached.err != nil; got != c.unauthed {
				t.Errorf("refused as unauthenticated: %v (%v), want %v", got, reached.err, c.unauthed)
			}
		})
	}
}
