package http_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// fakeHub records the connections it is asked to serve, and answers 200 instead of upgrading.
type fakeHub struct {
	full     bool
	serveErr error
	served   []httpadapter.LiveClient
	sales    [][]uuid.UUID
}

func (h *fakeHub) Full() bool { return h.full }

func (h *fakeHub) Serve(w http.ResponseWriter, _ *http.Request, c httpadapter.LiveClient, sales []uuid.UUID) error {
	if h.serveErr != nil {
		return h.serveErr
	}
	h.served = append(h.served, c)
	h.sales = append(h.sales, sales)
	w.WriteHeader(http.StatusOK)
	return nil
}

// oneTicket is a ticket store holding one ticket for fuzzBuyer, and counting redemptions.
type oneTicket struct {
	mu       sync.Mutex
	ticket   string
	redeemed int
}

func (o *oneTicket) IssueTicket(context.Context, domain.Principal, time.Duration) (string, error) {
	panic("unused")
}

func (o *oneTicket) RedeemTicket(_ context.Context, ticket string) (domain.Principal, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.redeemed++
	if ticket == "" || ticket != o.ticket {
		return domain.Principal{}, false, nil
	}
	o.ticket = ""
	return fuzzBuyer, true, nil
}

// TestLiveEndpointIdentifiesTheClientBeforeTheHub: GET /v1/ws hands the hub a client identified
// by a one-time ticket, the access token, or ?tenant= (anonymous); a full node answers 503
// without spending the ticket; a spent ticket or a malformed ?sale= never reaches the hub.
func TestLiveEndpointIdentifiesTheClientBeforeTheHub(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	buyer := fuzzBuyer.UserID
	sale := uuid.New()
	for _, tc := range []struct {
		name       string
		query      string
		token      string
		full       bool
		serveErr   error
		wantStatus int
		want       *httpadapter.LiveClient
		wantSales  int
		redeemed   int
	}{
		{name: "ticket", query: "?ticket=t1", wantStatus: 200,
			want: &httpadapter.LiveClient{TenantID: fuzzTenant.ID, UserID: &buyer}, redeemed: 1},
		{name: "spent or unknown ticket", query: "?ticket=other", wantStatus: 401, redeemed: 1},
		{name: "access token", token: fuzzToken, query: "?sale=" + sale.String(), wantStatus: 200,
			want: &httpadapter.LiveClient{TenantID: fuzzTenant.ID, UserID: &buyer}, wantSales: 1},
		{name: "anonymous", query: "?tenant=" + fuzzTenant.Slug, wantStatus: 200,
			want: &httpadapter.LiveClient{TenantID: fuzzTenant.ID}},
		{name: "unknown tenant", query: "?tenant=nobody", wantStatus: 404},
		{name: "malformed sale", query: "?tenant=" + fuzzTenant.Slug + "&sale=x", wantStatus: 400},
		{name: "full node keeps the ticket", query: "?ticket=t1", full: true, wantStatus: 503},
		{name: "full at upgrade", query: "?ticket=t1", serveErr: httpadapter.ErrLiveFull, wantStatus: 503, redeemed: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tickets := &oneTicket{ticket: "t1"}
			a := newApp(t, app.Deps{Tenants: fakeTenants{}, Tickets: tickets, Log: log})
			hub := &fakeHub{full: tc.full, serveErr: tc.serveErr}
			router, err := httpadapter.NewRouter(httpadapter.NewServer(a, log, httpadapter.CookieConfig{}),
				fakeAuthenticator{}, allowAll{}, log, httpadapter.RouterConfig{MaxBodyBytes: 1024, Live: hub})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/v1/ws"+tc.query, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			router.ServeHTTP(w, req)

			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantStatus == 503 && w.Header().Get("Retry-After") != "5" {
				t.Errorf("503 without Retry-After: %v", w.Header())
			}
			if tc.wantStatus >= 400 {
				var p struct{ Status int }
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != tc.wantStatus {
					t.Errorf("problem body %q: %v", w.Body, err)
				}
			}
			if tickets.redeemed != tc.redeemed {
				t.Errorf("ticket redeemed %d times, want %d", tickets.redeemed, tc.redeemed)
			}
			if tc.want == nil {
				if len(hub.served) != 0 {
					t.Fatalf("the hub served %+v", hub.served)
				}
				return
			}
			if len(hub.served) != 1 {
				t.Fatalf("the hub served %d connections, want 1", len(hub.served))
			}
			got := hub.served[0]
			if got.TenantID != tc.want.TenantID || (got.UserID == nil) != (tc.want.UserID == nil) ||
				(got.UserID != nil && *got.UserID != *tc.want.UserID) {
				t.Errorf("client %+v, want %+v", got, *tc.want)
			}
			if len(hub.sales[0]) != tc.wantSales {
				t.Errorf("sales %v, want %d", hub.sales[0], tc.wantSales)
			}
		})
	}
}
