package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

const (
	fuzzToken   = "the-one-fixed-access-token"
	fuzzMaxBody = 4096
)

var (
	validKey   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{8,128}$`) // the spec's Idempotency-Key pattern
	fuzzTenant = domain.Tenant{ID: uuid.MustParse("0190a000-0000-7000-8000-000000000001"), Slug: domain.DefaultTenantSlug, Name: "Default"}
	fuzzSaleID = uuid.MustParse("0190a000-0000-7000-8000-0000000000aa")
	fuzzBuyer  = domain.Principal{UserID: uuid.MustParse("0190a000-0000-7000-8000-0000000000b0"), TenantID: fuzzTenant.ID,
		Role: domain.RoleShopper, Email: "buyer@example.com", SessionID: uuid.MustParse("0190a000-0000-7000-8000-0000000000c0")}
)

// FuzzRequestDecoding drives the real router (validation, body cap, authentication, generated
// strict handlers, error mapping) with arbitrary bodies, content types and Idempotency-Key values
// for placeOrder and register, on an application whose ports are in-memory fakes. Whatever comes
// in:
//   - the answer is never a 5xx;
//   - every non-2xx answer is application/problem+json whose body is a JSON object with the
//     HTTP status as its status;
//   - a purchase is accepted (202) only when the body is a JSON object holding an integer
//     quantity in 1..1000 and nothing else, and the order accepted has that quantity; and such a
//     body, sent as application/json with a valid key (and the token), is accepted;
//   - a registration succeeds (201) only for a JSON object of exactly an email and a password;
//   - a refused request reserves, queues and stores nothing.
func FuzzRequestDecoding(f *testing.F) {
	fx := newFuzzApp(f)
	const (
		orders   = byte(0)
		register = byte(1)
	)
	for _, s := range []struct {
		op          byte
		contentType string
		key         string
		body        string
	}{
		{orders, "application/json", "fuzz-key-0001", `{"quantity": 1}`},
		{orders, "application/json", "fuzz-key-0001", `{"quantity":1000}`},
		{orders, "application/json; charset=utf-8", "5f0c2b8e-6a51-4c5e-9d43-2b8f1f7e0c11", "\t{ \"quantity\" : 7 }\n"},
		{orders, "application/json", "fuzz-key-0002", `{"quantity": 1001}`},
		{orders, "application/json", "fuzz-key-0003", `{"quantity": 0}`},
		{orders, "application/json", "fuzz-key-0004", `{"quantity": -1}`},
		{orders, "application/json", "fuzz-key-0005", `{"quantity": 1.5}`},
		{orders, "application/json", "fuzz-key-0006", `{"quantity": 1.0}`},
		{orders, "application/json", "fuzz-key-0007", `{"quantity": 1e2}`},
		{orders, "application/json", "fuzz-key-0008", `{"quantity": 1e400}`},
		{orders, "application/json", "fuzz-key-0009", `{"quantity": "1"}`},
		{orders, "application/json", "fuzz-key-0010", `{"quantity": null}`},
		{orders, "application/json", "fuzz-key-0011", `{"quantity": 1, "priceCents": 0}`},
		{orders, "application/json", "fuzz-key-0012", `{"Quantity": 1}`},
		{orders, "application/json", "fuzz-key-0013", `{"quantity": 1, "quantity": 2}`},
		{orders, "application/json", "fuzz-key-0014", `{"quantity": 1}{"quantity": 2}`},
		{orders, "application/json", "fuzz-key-0015", `{"quantity": 1} trailing`},
		{orders, "application/json", "fuzz-key-0016", `[{"quantity": 1}]`},
		{orders, "application/json", "fuzz-key-0017", `null`},
		{orders, "application/json", "fuzz-key-0018", ``},
		{orders, "application/json", "fuzz-key-0019", `{"quantity": 1`},
		{orders, "application/json", "fuzz-key-0020", "\xef\xbb\xbf{\"quantity\": 1}"},
		{orders, "application/json", "fuzz-key-0021", `{"quantity": 1, "pad": "` + strings.Repeat("x", fuzzMaxBody) + `"}`},
		{orders, "text/plain", "fuzz-key-0022", `{"quantity": 1}`},
		{orders, "", "fuzz-key-0023", `{"quantity": 1}`},
		{orders, "application/x-www-form-urlencoded", "fuzz-key-0024", `quantity=1`},
		{orders, "application/problem+json", "fuzz-key-0025", `{"quantity": 1}`},
		{orders, "APPLICATION/JSON", "fuzz-key-0026", `{"quantity": 1}`},
		{orders, "application/json; charset=utf-16", "fuzz-key-0027", `{"quantity": 1}`},
		{orders, "multipart/form-data; boundary=x", "fuzz-key-0028", "--x\r\n\r\n1\r\n--x--"},
		{orders, "application/json", "", `{"quantity": 1}`},
		{orders, "application/json", "short", `{"quantity": 1}`},
		{orders, "application/json", "abc%0D%0ASet-Cookie:x", `{"quantity": 1}`},
		{orders, "application/json", "abcdefgh;ijkl", `{"quantity": 1}`},
		{orders, "application/json", `abcdefgh"ijkl`, `{"quantity": 1}`},
		{orders, "application/json", strings.Repeat("k", 129), `{"quantity": 1}`},
		{orders, "application/json", "ключ-ключ-ключ", `{"quantity": 1}`},
		{register, "application/json", "", `{"email": "ada@example.com", "password": "correct-horse-battery"}`},
		{register, "application/json", "", `{"email": "ada@example.com", "password": "correct-horse-battery"}`},
		{register, "application/json", "", `{"email": "bob@example.com", "password": "password123"}`},
		{register, "application/json", "", `{"email": "carol@example.com", "password": "aaaaaaaaaaaa"}`},
		{register, "application/json", "", `{"email": "dave@example.com", "password": "short"}`},
		{register, "application/json", "", `{"email": "eve@example.com", "password": "` + strings.Repeat("ä", 40) + `"}`},
		{register, "application/json", "", `{"email": "not-an-email", "password": "correct-horse-battery"}`},
		{register, "application/json", "", `{"email": "mallory@example.com", "password": "correct-horse-battery", "role": "admin"}`},
		{register, "application/json", "", `{"email": 1, "password": 2}`},
		{register, "application/json", "", `{}`},
		{register, "text/plain", "", `{"email": "ada@example.com", "password": "correct-horse-battery"}`},
		{register, "application/json", "", `{"email": "trailing@example.com", "password": "correct-horse-battery"} {}`},
	} {
		f.Add(s.op, s.contentType, s.key, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, op byte, contentType, key string, body []byte) {
		// What an HTTP/1.1 server can receive: field values without control characters, and
		// without surrounding white space (the server trims it).
		if !fieldValue(contentType) || !fieldValue(key) {
			t.Skip()
		}
		contentType, key = strings.Trim(contentType, " \t"), strings.Trim(key, " \t")
		path := "/v1/sales/" + fuzzSaleID.String() + "/orders"
		if op%2 == register {
			path = "/v1/auth/register"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		req.Header.Set("Authorization", "Bearer "+fuzzToken)

		before := fx.state()
		rec := httptest.NewRecorder()
		fx.router.ServeHTTP(rec, req)
		status, respBody := rec.Code, rec.Body.Bytes()
		after := fx.state()
		ct := rec.Header().Get("Content-Type")

		if status >= 500 {
			t.Fatalf("%s %q (Content-Type %q, Idempotency-Key %q) -> %d: %s", path, body, contentType, key, status, respBody)
		}
		if _, valid := orderBody(body); op%2 == orders && valid && contentType == "application/json" &&
			validKey.MatchString(key) && status != http.StatusAccepted {
			t.Fatalf("the valid purchase %q (Idempotency-Key %q) answered %d: %s", body, key, status, respBody)
		}
		if status < 200 || status >= 300 {
			if !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("%d answered as %q, want application/problem+json: %s", status, ct, respBody)
			}
			var p struct {
				Type   string
				Title  string
				Status json.Number
			}
			if err := json.Unmarshal(respBody, &p); err != nil {
				t.Fatalf("%d problem is not a JSON object: %v: %s", status, err, respBody)
			}
			if p.Status.String() != strconv.Itoa(status) || !strings.HasPrefix(p.Type, httpadapter.ProblemBase) || p.Title == "" {
				t.Fatalf("problem document disagrees with the %d answer: %s", status, respBody)
			}
			if after != before {
				t.Fatalf("a refused request (%d) left a trace: before %+v, after %+v", status, before, after)
			}
			return
		}
		if !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%d answered as %q, want application/json", status, ct)
		}

		if op%2 == register {
			if status != http.StatusCreated || !registerBody(body) {
				t.Fatalf("register %q answered %d: %s", body, status, respBody)
			}
			if after.users != before.users+1 {
				t.Fatalf("201 but the user count went from %d to %d", before.users, after.users)
			}
			return
		}
		q, ok := orderBody(body)
		if status != http.StatusAccepted || !ok {
			t.Fatalf("purchase %q (Content-Type %q, Idempotency-Key %q) answered %d: %s", body, contentType, key, status, respBody)
		}
		var o struct{ Quantity int }
		if err := json.Unmarshal(respBody, &o); err != nil || o.Quantity != q {
			t.Fatalf("body %q asked for %d, the order accepted is for %d (%v): %s", body, q, o.Quantity, err, respBody)
		}
		if after.reserved != before.reserved+1 || after.queued != before.queued+1 {
			t.Fatalf("202 but reservations went %d -> %d and queued %d -> %d", before.reserved, after.reserved, before.queued, after.queued)
		}
	})
}

// TestFuzzRequestDecodingAcceptsValidPurchases checks the oracles FuzzRequestDecoding judges by,
// and that valid purchases are accepted whatever the fuzzer's corpus holds: a router refusing
// everything must not pass.
func TestFuzzRequestDecodingAcceptsValidPurchases(t *testing.T) {
	fx := newFuzzApp(t)
	path := "/v1/sales/" + fuzzSaleID.String() + "/orders"
	for i, body := range []string{`{"quantity": 1}`, `{"quantity":1000}`, " {\"quantity\"\t:\n42} \n", `{"quantity": 2, "quantity": 3}`} {
		q, ok := orderBody([]byte(body))
		if !ok {
			t.Fatalf("the oracle refuses the valid body %q", body)
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("valid-key-%04d", i))
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		rec := httptest.NewRecorder()
		fx.router.ServeHTTP(rec, req)
		var o struct{ Quantity int }
		if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &o) != nil || o.Quantity != q {
			t.Fatalf("%s -> %d: %s", body, rec.Code, rec.Body)
		}
	}
	for _, body := range []string{`{"quantity": 1.0}`, `{"quantity": 1} {}`, `{"quantity": 1, "x": 1}`, `{"Quantity": 1}`, `null`, `{"quantity": 1001}`} {
		if _, ok := orderBody([]byte(body)); ok {
			t.Errorf("the oracle accepts the invalid body %q", body)
		}
	}
	// A register body for the register oracle.
	if !registerBody([]byte(`{"email": "a@b.c", "password": "x"}`)) || registerBody([]byte(`{"email": "a@b.c"}`)) {
		t.Error("the register oracle is wrong")
	}
}

// orderBody is the oracle for purchase bodies: one JSON object with exactly the member
// "quantity", an integer literal in 1..1000, and nothing after it but white space. Duplicate
// members count once, the last one winning, as in every JSON decoder on the way.
func orderBody(body []byte) (int, bool) {
	m, ok := jsonObject(body)
	if !ok || len(m) != 1 {
		return 0, false
	}
	n, ok := m["quantity"].(json.Number)
	if !ok {
		return 0, false
	}
	q, err := strconv.Atoi(n.String())
	if err != nil || q < 1 || q > 1000 {
		return 0, false
	}
	return q, true
}

// registerBody is the oracle for register bodies that may succeed: one JSON object of exactly
// the string members email and password.
func registerBody(body []byte) bool {
	m, ok := jsonObject(body)
	if !ok || len(m) != 2 {
		return false
	}
	_, e := m["email"].(string)
	_, p := m["password"].(string)
	return e && p
}

func jsonObject(body []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return m, true
}

// fieldValue reports whether s can be an HTTP header field value (RFC 9110: no CTLs but HTAB).
func fieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// fuzzApp is the router on an application of in-memory fakes.
type fuzzApp struct {
	router http.Handler
	users  *fakeUsers
	inv    *fakeInventory
	queue  *fakeQueue
}

type fuzzState struct{ users, reserved, queued int }

func (a *fuzzApp) state() fuzzState {
	return fuzzState{users: a.users.count(), reserved: a.inv.count(), queued: a.queue.count()}
}

func newFuzzApp(tb testing.TB) *fuzzApp { tb.Helper(); return newFuzzAppObserved(tb, nil) }

// newFuzzAppObserved is newFuzzApp with obs told of every request (nil: none).
func newFuzzAppObserved(tb testing.TB, obs httpadapter.RequestObserver) *fuzzApp {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	fx := &fuzzApp{users: &fakeUsers{byEmail: map[string]domain.User{}}, inv: &fakeInventory{}, queue: &fakeQueue{}}
	a := newApp(tb, app.Deps{
		Tenants: fakeTenants{}, Users: fx.users, Sales: fakeSales{}, Inventory: fx.inv,
		Purchases: fx.inv, Queue: fx.queue, Dispatch: fx.queue, Hasher: fakeHasher{}, Live: quietLive{}, Log: log,
		Cache: noRoomCache{},
		Now:   func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) },
	})
	srv := httpadapter.NewServer(a, log, httpadapter.CookieConfig{})
	router, err := httpadapter.NewRouter(srv, fakeAuthenticator{}, allowAll{}, log, httpadapter.RouterConfig{
		MaxBodyBytes: fuzzMaxBody,
		Observer:     obs,
		Edge: httpadapter.EdgeConfig{AllowedOrigins: []string{"http://localhost:5173"},
			PurchasesPerMinute: 1000, AuthPerMinute: 1000},
	})
	if err != nil {
		tb.Fatal(err)
	}
	fx.router = router
	return fx
}

// unused stands for every port the fuzzed requests never reach: any call panics.
type unused struct {
	ports.OrderRepository
	ports.Nodes
	ports.SaleCache
	ports.TokenIssuer
	ports.SessionStore
	ports.Outbox
	ports.ProcessedEvents
	ports.SaleStatsRepository
	ports.SaleCounterRepository
	ports.Mailer
	ports.Metrics
	ports.SaleScheduler
	ports.StoreEpoch
	ports.TicketStore
	ports.BrokerWatcher
	ports.OutboxRecovery
	ports.WaitingRoomStore
	ports.WaitingRoomSales
	ports.RoomAdmissionRecords
}

type (
	unusedPublisher struct{ ports.EventPublisher }
	unusedLive      struct{ ports.LiveEvents }
	unusedStores    struct {
		ports.TenantRepository
		ports.UserRepository
		ports.SaleRepository
		ports.InventoryStore
		ports.OrderQueue
		ports.PasswordHasher
	}
	unusedPurchases  struct{ ports.PurchaseStore }
	unusedDispatcher struct{ ports.Dispatcher }
)

// quietLive has no live clients to tell.
type quietLive struct{}

func (quietLive) StockChanged(uuid.UUID, uuid.UUID)               {}
func (quietLive) Publish(context.Context, domain.LiveEvent) error { return nil }

// newApp wires the use-cases on d, every port d leaves out standing in as one that panics if
// called: what a test does not give, its requests must not reach.
func newApp(tb testing.TB, d app.Deps) *app.Application {
	tb.Helper()
	stand := []any{unused{}, unusedPublisher{}, unusedLive{}, unusedStores{}, unusedPurchases{}, unusedDispatcher{}}
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Interface || !f.IsNil() {
			continue
		}
		for _, u := range stand {
			if reflect.TypeOf(u).Implements(f.Type()) {
				f.Set(reflect.ValueOf(u))
				break
			}
		}
	}
	a, err := app.New(d, app.DefaultSettings())
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// fakeAuthenticator accepts one fixed token, for the buyer.
type fakeAuthenticator struct{}

func (fakeAuthenticator) Handle(_ context.Context, token string) (domain.Principal, error) {
	if token != fuzzToken {
		return domain.Principal{}, domain.ErrUnauthenticated.WithDetail("not the fixed token")
	}
	return fuzzBuyer, nil
}

// allowAll is an edge gate that always allows, and finds every session alive.
type allowAll struct{}

func (allowAll) Check(context.Context, string, int, uuid.UUID) (httpadapter.GateDecision, error) {
	return httpadapter.GateDecision{Allowed: true, Remaining: 999, ResetAfter: time.Minute, SessionActive: true}, nil
}

type fakeTenants struct{}

func (fakeTenants) EnsureTenant(context.Context, string, string) (domain.Tenant, error) {
	panic("unused")
}

func (fakeTenants) TenantBySlug(_ context.Context, slug string) (domain.Tenant, error) {
	if slug == fuzzTenant.Slug {
		return fuzzTenant, nil
	}
	return domain.Tenant{}, domain.ErrTenantNotFound
}

type fakeUsers struct {
	mu      sync.Mutex
	byEmail map[string]domain.User
}

func (u *fakeUsers) CreateUser(_ context.Context, user domain.User) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, taken := u.byEmail[user.Email]; taken {
		return domain.ErrEmailTaken
	}
	u.byEmail[user.Email] = user
	return nil
}

func (u *fakeUsers) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.byEmail)
}

func (*fakeUsers) UserByEmail(context.Context, uuid.UUID, string) (domain.User, error) {
	panic("unused")
}
func (*fakeUsers) UserByID(context.Context, uuid.UUID, uuid.UUID) (domain.User, error) {
	panic("unused")
}
func (*fakeUsers) ReplacePasswordHash(context.Context, uuid.UUID, uuid.UUID, string, string) (bool, error) {
	panic("unused")
}

// fakeSales: the fake inventory always knows the sale, so placeOrder never reads it.
type fakeSales struct{ ports.SaleRepository }

// noRoomCache knows every sale as one without a waiting room (the purchase's room check reads it).
type noRoomCache struct{ ports.SaleCache }

func (noRoomCache) CachedSale(_ context.Context, tenantID, saleID uuid.UUID) (domain.Sale, bool, error) {
	return domain.Sale{ID: saleID, TenantID: tenantID}, true, nil
}

// fakeInventory reserves whatever is asked.
type fakeInventory struct {
	ports.InventoryStore // every other method: nil, panics if called
	mu                   sync.Mutex
	reserved             int
}

// Purchase remembers no key: every key is new, so every valid purchase is a fresh one.
func (i *fakeInventory) Purchase(_ context.Context, p ports.Purchase) (ports.PurchaseOutcome, error) {
	r := p.Reservation
	if r.SaleID != fuzzSaleID || r.Quantity < 1 || r.Quantity > 1000 {
		return ports.PurchaseOutcome{}, fmt.Errorf("fake inventory: unexpected reservation %+v", r)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.reserved++
	r.Status, r.UnitPriceCents, r.Currency = domain.OrderPending, 100, "EUR"
	r.CreatedAt = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	return ports.PurchaseOutcome{Reserved: ports.ReserveResult{Reservation: r, Remaining: 1}}, nil
}

func (*fakeInventory) Complete(context.Context, ports.IdempotencyScope, ports.IdempotencyRecord, time.Duration) error {
	return nil
}
func (*fakeInventory) Forget(context.Context, ports.IdempotencyScope) error { return nil }
func (*fakeInventory) Lookup(context.Context, ports.IdempotencyScope, uuid.UUID, uuid.UUID) (ports.IdempotencyRecord, bool, error) {
	return ports.IdempotencyRecord{}, false, nil
}
func (*fakeInventory) GateInPurchase() bool { return false }

func (*fakeInventory) AdmissionInPurchase() bool { return false }

func (i *fakeInventory) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.reserved
}

type fakeQueue struct {
	ports.OrderQueue
	mu     sync.Mutex
	queued int
}

func (q *fakeQueue) Recent(uuid.UUID, uuid.UUID) []domain.Reservation { return nil }

func (q *fakeQueue) EnqueueOrder(context.Context, domain.Reservation) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queued++
	return nil
}

func (q *fakeQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}

type fakeHasher struct{}

func (fakeHasher) Hash(password string) (string, error) { return "fake:" + password, nil }
func (fakeHasher) Verify(string, string) (bool, error)  { panic("unused") }
func (fakeHasher) NeedsRehash(string) bool              { panic("unused") }
