package app_test

// In-memory fakes of the ports in internal/ports, faithful to the contracts documented there
// (and, for the inventory, to the Lua scripts in lua/). Every fake is safe for concurrent use,
// counts the calls it receives, and lets a test inject failures. Methods starting with a lower
// case letter are test set-up and inspection helpers: they neither count nor fail.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/memory"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

var ctx = context.Background()

// ---------------------------------------------------------------------------------------------
// clock, call counter, log recorder

// clock is a manual clock shared by the use-cases and the fakes standing in for Redis TIME.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// calls counts method invocations by name.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) inc(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *calls) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// loggedFor counts the records at level whose message contains substr and whose attribute key
// prints as value.
func (l *logRecorder) loggedFor(level slog.Level, substr, key, value string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level != level || !strings.Contains(r.Message, substr) {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key && a.Value.String() == value {
				n++
				return false
			}
			return true
		})
	}
	return n
}

// logged counts the records at level whose message contains substr.
func (l *logRecorder) logged(level slog.Level, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------------------------
// InventoryStore

type saleKey struct{ tenant, sale uuid.UUID }

// invSale is a copy of one sale's inventory, for assertions.
type invSale struct {
	total, remaining, sold, limit int
	ends                          time.Time
	price                         int64
	buyers                        map[uuid.UUID]int
}

// fakeInventory is the in-memory inventory and purchase store (internal/adapters/memory, held to
// the contracts the Redis and PostgreSQL stores pass), on the test's clock, with call counts,
// injected failures and inspection helpers around it.
type fakeInventory struct {
	calls
	mem *memory.Inventory

	mu   sync.Mutex
	ttls map[ports.IdempotencyScope]time.Duration

	// Injected failures, returned before the operation does anything.
	PurchaseErr, SyncErr, ReservationErr, FindErr, MarkErr, ReleaseErr, CompleteErr error
	// AfterPurchase, if set, runs when the store has taken a purchase, before it answers.
	AfterPurchase func()
}

var (
	_ ports.InventoryStore = (*fakeInventory)(nil)
	_ ports.PurchaseStore  = (*fakeInventory)(nil)
)

func newFakeInventory(now func() time.Time) *fakeInventory {
	return &fakeInventory{mem: memory.NewInventory(now), ttls: map[ports.IdempotencyScope]time.Duration{}}
}

func (f *fakeInventory) SyncSale(ctx context.Context, s domain.Sale, soldHint int) (domain.Inventory, error) {
	f.inc("SyncSale")
	if f.SyncErr != nil {
		return domain.Inventory{}, f.SyncErr
	}
	return f.mem.SyncSale(ctx, s, soldHint)
}

func (f *fakeInventory) Inventory(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Inventory, bool, error) {
	invs, err := f.Inventories(ctx, tenantID, []uuid.UUID{saleID})
	inv, ok := invs[saleID]
	return inv, ok, err
}

func (f *fakeInventory) Inventories(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID) (map[uuid.UUID]domain.Inventory, error) {
	f.inc("Inventories")
	return f.mem.Inventories(ctx, tenantID, saleIDs)
}

func (f *fakeInventory) Reserve(ctx context.Context, r domain.Reservation) (ports.ReserveResult, error) {
	f.inc("Reserve")
	return f.mem.Reserve(ctx, r)
}

func (f *fakeInventory) Purchase(ctx context.Context, p ports.Purchase) (ports.PurchaseOutcome, error) {
	f.inc("Purchase")
	if f.PurchaseErr != nil {
		return ports.PurchaseOutcome{}, f.PurchaseErr
	}
	out, err := f.mem.Purchase(ctx, p)
	if f.AfterPurchase != nil {
		f.AfterPurchase()
	}
	return out, err
}

func (f *fakeInventory) Complete(ctx context.Context, s ports.IdempotencyScope, rec ports.IdempotencyRecord, ttl time.Duration) error {
	f.inc("Complete")
	if f.CompleteErr != nil {
		return f.CompleteErr
	}
	f.mu.Lock()
	f.ttls[s] = ttl
	f.mu.Unlock()
	return f.mem.Complete(ctx, s, rec, ttl)
}

func (f *fakeInventory) Forget(ctx context.Context, s ports.IdempotencyScope) error {
	f.inc("Forget")
	return f.mem.Forget(ctx, s)
}

func (f *fakeInventory) Reservation(ctx context.Context, tenantID, saleID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	f.inc("Reservation")
	if f.ReservationErr != nil {
		return domain.Reservation{}, false, f.ReservationErr
	}
	return f.mem.Reservation(ctx, tenantID, saleID, orderID)
}

func (f *fakeInventory) FindReservation(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID, orderID uuid.UUID) (domain.Reservation, bool, error) {
	f.inc("FindReservation")
	if f.FindErr != nil {
		return domain.Reservation{}, false, f.FindErr
	}
	return f.mem.FindReservation(ctx, tenantID, saleIDs, orderID)
}

func (f *fakeInventory) MarkConfirmed(ctx context.Context, r domain.Reservation) error {
	f.inc("MarkConfirmed")
	if f.MarkErr != nil {
		return f.MarkErr
	}
	return f.mem.MarkConfirmed(ctx, r)
}

func (f *fakeInventory) Release(ctx context.Context, r domain.Reservation) (bool, error) {
	f.inc("Release")
	if f.ReleaseErr != nil {
		return false, f.ReleaseErr
	}
	return f.mem.Release(ctx, r)
}

func (f *fakeInventory) Rereserve(ctx context.Context, r domain.Reservation) (domain.Reservation, error) {
	f.inc("Rereserve")
	return f.mem.Rereserve(ctx, r)
}

func (f *fakeInventory) Adopt(ctx context.Context, r domain.Reservation) (domain.Reservation, bool, error) {
	f.inc("Adopt")
	return f.mem.Adopt(ctx, r)
}

func (f *fakeInventory) RestoreSale(ctx context.Context, s domain.Sale, orders []domain.Order, fence time.Time) (domain.Inventory, error) {
	f.inc("RestoreSale")
	if f.SyncErr != nil {
		return domain.Inventory{}, f.SyncErr
	}
	return f.mem.RestoreSale(ctx, s, orders, fence)
}

func (f *fakeInventory) AwaitedReservations(ctx context.Context, tenantID, saleID uuid.UUID, before time.Time, limit int) ([]domain.Reservation, error) {
	f.inc("AwaitedReservations")
	return f.mem.AwaitedReservations(ctx, tenantID, saleID, before, limit)
}

// Helpers: set-up and inspection, neither counted nor failing.

func (f *fakeInventory) load(s domain.Sale, soldHint int) (domain.Inventory, error) {
	return f.mem.SyncSale(ctx, s, soldHint)
}

func (f *fakeInventory) reserve(r domain.Reservation) (ports.ReserveResult, error) {
	return f.mem.Reserve(ctx, r)
}

func (f *fakeInventory) release(r domain.Reservation) bool {
	released, _ := f.mem.Release(ctx, r)
	return released
}

func (f *fakeInventory) reservation(tenantID, saleID, orderID uuid.UUID) (domain.Reservation, bool) {
	r, ok, _ := f.mem.Reservation(ctx, tenantID, saleID, orderID)
	return r, ok
}

// state is a copy of a sale's inventory.
func (f *fakeInventory) state(tenantID, saleID uuid.UUID) (invSale, bool) {
	st, ok := f.mem.State(tenantID, saleID)
	return invSale{total: st.Total, remaining: st.Remaining, sold: st.Sold, limit: st.Limit, ends: st.Ends,
		price: st.Price, buyers: st.Buyers}, ok
}

func (f *fakeInventory) isAwaited(r domain.Reservation) bool { return f.mem.IsAwaited(r) }

// record is the live record of an idempotency key.
func (f *fakeInventory) record(s ports.IdempotencyScope) (ports.IdempotencyRecord, bool) {
	rec, _, ok := f.mem.KeyRecord(s)
	return rec, ok
}

func (f *fakeInventory) forget(s ports.IdempotencyScope) { _ = f.mem.Forget(ctx, s) }

func (f *fakeInventory) ttl(s ports.IdempotencyScope) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ttls[s]
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// ---------------------------------------------------------------------------------------------
// SaleRepository

type fakeSales struct {
	calls
	now func() time.Time

	mu     sync.Mutex
	sales  map[uuid.UUID]domain.Sale
	closed map[uuid.UUID]bool
	sold   map[uuid.UUID]int
	rowMu  sync.Mutex // the row lock UpdateSale holds

	CreateErr, SoldErr error
	// CommitErr makes UpdateSale fail after its update function succeeded: the commit failed.
	CommitErr error
}

var _ ports.SaleRepository = (*fakeSales)(nil)

func newFakeSales(now func() time.Time) *fakeSales {
	return &fakeSales{now: now, sales: map[uuid.UUID]domain.Sale{}, closed: map[uuid.UUID]bool{}, sold: map[uuid.UUID]int{}}
}

func (f *fakeSales) CreateSale(_ context.Context, s domain.Sale) error {
	f.inc("CreateSale")
	if f.CreateErr != nil {
		return f.CreateErr
	}
	f.put(s)
	return nil
}

func (f *fakeSales) Sale(_ context.Context, tenantID, id uuid.UUID) (domain.Sale, error) {
	f.inc("Sale")
	s, ok := f.get(id)
	if !ok || s.TenantID != tenantID {
		return domain.Sale{}, domain.ErrSaleNotFound
	}
	return s, nil
}

func (f *fakeSales) ListSales(_ context.Context, tenantID uuid.UUID, flt ports.SaleFilter) ([]domain.Sale, error) {
	f.inc("ListSales")
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	var out []domain.Sale
	for _, s := range f.sales {
		ended := !now.Before(s.EndsAt)
		if s.TenantID == tenantID && (flt.Any || ended == flt.EndedOnly) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b domain.Sale) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

// UpdateSale models the transaction: update sees the locked row, and an error from update (or
// from the commit) leaves the stored sale as it was.
func (f *fakeSales) UpdateSale(ctx context.Context, tenantID, id uuid.UUID,
	update func(ctx context.Context, s domain.Sale) (domain.Sale, error)) (domain.Sale, error) {
	f.inc("UpdateSale")
	f.rowMu.Lock()
	defer f.rowMu.Unlock()
	current, ok := f.get(id)
	if !ok || current.TenantID != tenantID {
		return domain.Sale{}, domain.ErrSaleNotFound
	}
	next, err := update(ctx, current)
	if err != nil {
		return domain.Sale{}, err
	}
	if f.CommitErr != nil {
		return domain.Sale{}, f.CommitErr
	}
	f.put(next)
	return next, nil
}

func (f *fakeSales) LiveSales(_ context.Context, since time.Time) ([]ports.SaleRef, error) {
	f.inc("LiveSales")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ports.SaleRef
	for _, s := range f.sales {
		if !f.closed[s.ID] && s.EndsAt.After(since) {
			out = append(out, ports.SaleRef{TenantID: s.TenantID, SaleID: s.ID})
		}
	}
	return out, nil
}

func (f *fakeSales) TenantLiveSaleIDs(_ context.Context, tenantID uuid.UUID, since time.Time) ([]uuid.UUID, error) {
	f.inc("TenantLiveSaleIDs")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uuid.UUID
	for _, s := range f.sales {
		if s.TenantID == tenantID && !f.closed[s.ID] && s.EndsAt.After(since) {
			out = append(out, s.ID)
		}
	}
	return out, nil
}

func (f *fakeSales) CloseSales(_ context.Context, cutoff time.Time) (int64, error) {
	f.inc("CloseSales")
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, s := range f.sales {
		if !f.closed[s.ID] && s.EndsAt.Before(cutoff) {
			f.closed[s.ID] = true
			n++
		}
	}
	return n, nil
}

func (f *fakeSales) SoldUnits(_ context.Context, _, saleID uuid.UUID) (int, error) {
	f.inc("SoldUnits")
	if f.SoldErr != nil {
		return 0, f.SoldErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sold[saleID], nil
}

func (f *fakeSales) put(s domain.Sale) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sales[s.ID] = s
}

func (f *fakeSales) get(id uuid.UUID) (domain.Sale, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sales[id]
	return s, ok
}

// ---------------------------------------------------------------------------------------------
// OrderRepository

type fakeOrders struct {
	calls
	mu     sync.Mutex
	orders map[uuid.UUID]domain.Order

	// OnSave, if set, decides each SaveOrder: persist says whether the write lands, err is what
	// the caller is told (persist && err != nil: the commit landed, the answer was lost).
	OnSave       func(o domain.Order) (persist bool, err error)
	OrderErr     error
	ConfirmedErr error

	// events are the outbox events of the writes that landed, in order.
	events []domain.Event
}

var _ ports.OrderRepository = (*fakeOrders)(nil)

func newFakeOrders() *fakeOrders { return &fakeOrders{orders: map[uuid.UUID]domain.Order{}} }

func (f *fakeOrders) SaveOrder(_ context.Context, o domain.Order, events ...domain.Event) (bool, error) {
	f.inc("SaveOrder")
	persist, err := true, error(nil)
	if f.OnSave != nil {
		persist, err = f.OnSave(o)
	}
	created := false
	if persist {
		created = f.save(o, events)
	}
	return created && err == nil, err
}

// save writes once, with its events; a confirmed order replaces a failed one.
func (f *fakeOrders) save(o domain.Order, events []domain.Event) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.orders[o.ID]; ok && !(old.Status == domain.OrderFailed && o.Status == domain.OrderConfirmed) {
		return false
	}
	f.orders[o.ID] = o
	f.events = append(f.events, events...)
	return true
}

// savedEvents is a copy of the events written with the orders.
func (f *fakeOrders) savedEvents() []domain.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func (f *fakeOrders) Order(_ context.Context, tenantID, id uuid.UUID) (domain.Order, error) {
	f.inc("Order")
	if f.OrderErr != nil {
		return domain.Order{}, f.OrderErr
	}
	o, ok := f.get(id)
	if !ok || o.TenantID != tenantID {
		return domain.Order{}, domain.ErrOrderNotFound
	}
	return o, nil
}

func orderAfter(o domain.Order, c ports.OrderCursor) bool {
	// Newest first: o comes after the cursor if it is older, ties broken by id.
	if cmp := o.CreatedAt.Compare(c.CreatedAt); cmp != 0 {
		return cmp < 0
	}
	return strings.Compare(o.ID.String(), c.ID.String()) < 0
}

func (f *fakeOrders) ListOrders(_ context.Context, tenantID, userID uuid.UUID, after *ports.OrderCursor, limit int) ([]domain.Order, error) {
	f.inc("ListOrders")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.Order
	for _, o := range f.orders {
		if o.TenantID == tenantID && o.UserID == userID && (after == nil || orderAfter(o, *after)) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b domain.Order) int {
		if cmp := b.CreatedAt.Compare(a.CreatedAt); cmp != 0 {
			return cmp
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeOrders) ConfirmedOrderIDs(_ context.Context, tenantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	f.inc("ConfirmedOrderIDs")
	if f.ConfirmedErr != nil {
		return nil, f.ConfirmedErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uuid.UUID]bool{}
	for _, id := range ids {
		if o, ok := f.orders[id]; ok && o.TenantID == tenantID && o.Status == domain.OrderConfirmed {
			out[id] = true
		}
	}
	return out, nil
}

func (f *fakeOrders) ConfirmedSaleOrders(_ context.Context, tenantID, saleID uuid.UUID) ([]domain.Order, error) {
	f.inc("ConfirmedSaleOrders")
	if f.ConfirmedErr != nil {
		return nil, f.ConfirmedErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.Order
	for _, o := range f.orders {
		if o.TenantID == tenantID && o.SaleID == saleID && o.Status == domain.OrderConfirmed {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b domain.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (f *fakeOrders) get(id uuid.UUID) (domain.Order, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[id]
	return o, ok
}

func (f *fakeOrders) put(o domain.Order) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orders[o.ID] = o
}

// ---------------------------------------------------------------------------------------------
// OrderQueue

type task struct {
	R     domain.Reservation
	State ports.TaskState
}

type fakeQueue struct {
	calls
	mu    sync.Mutex
	tasks map[uuid.UUID]task

	EnqueueErr error
}

var _ ports.OrderQueue = (*fakeQueue)(nil)

func newFakeQueue() *fakeQueue { return &fakeQueue{tasks: map[uuid.UUID]task{}} }

// EnqueueOrder queues once per order id while the task exists, whatever its state.
func (f *fakeQueue) EnqueueOrder(_ context.Context, r domain.Reservation) error {
	f.inc("EnqueueOrder")
	if f.EnqueueErr != nil {
		return f.EnqueueErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tasks[r.OrderID]; ok {
		return fmt.Errorf("enqueue order %s: %w", r.OrderID, ports.ErrAlreadyQueued)
	}
	f.tasks[r.OrderID] = task{R: r, State: ports.TaskQueued}
	return nil
}

func (f *fakeQueue) OrderTaskState(_ context.Context, orderID uuid.UUID) (ports.TaskState, error) {
	f.inc("OrderTaskState")
	t, ok := f.task(orderID)
	if !ok {
		return ports.TaskAbsent, nil
	}
	return t.State, nil
}

func (f *fakeQueue) DeadLetters(_ context.Context, tenantID uuid.UUID, limit int) ([]domain.DeadLetter, error) {
	f.inc("DeadLetters")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.DeadLetter
	for _, t := range f.tasks {
		if t.State == ports.TaskArchived && t.R.TenantID == tenantID && len(out) < limit {
			out = append(out, domain.DeadLetter{Reservation: t.R, Attempts: 1})
		}
	}
	return out, nil
}

func (f *fakeQueue) DeadLetter(_ context.Context, orderID uuid.UUID) (domain.DeadLetter, error) {
	f.inc("DeadLetter")
	t, ok := f.task(orderID)
	if !ok || t.State != ports.TaskArchived {
		return domain.DeadLetter{}, domain.ErrOrderNotFound
	}
	return domain.DeadLetter{Reservation: t.R, Attempts: 1}, nil
}

func (f *fakeQueue) RunDeadLetter(_ context.Context, orderID uuid.UUID) error {
	f.inc("RunDeadLetter")
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[orderID]
	if !ok || t.State != ports.TaskArchived {
		return domain.ErrOrderNotFound
	}
	t.State = ports.TaskQueued
	f.tasks[orderID] = t
	return nil
}

func (f *fakeQueue) task(orderID uuid.UUID) (task, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[orderID]
	return t, ok
}

func (f *fakeQueue) put(r domain.Reservation, state ports.TaskState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[r.OrderID] = task{R: r, State: state}
}

func (f *fakeQueue) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tasks)
}

// ---------------------------------------------------------------------------------------------
// SaleCache

type fakeCache struct {
	calls
	mu    sync.Mutex
	sales map[saleKey]domain.Sale

	ReplaceErr error
}

var _ ports.SaleCache = (*fakeCache)(nil)

func newFakeCache() *fakeCache { return &fakeCache{sales: map[saleKey]domain.Sale{}} }

func (f *fakeCache) CachedSale(_ context.Context, tenantID, saleID uuid.UUID) (domain.Sale, bool, error) {
	f.inc("CachedSale")
	s, ok := f.get(tenantID, saleID)
	return s, ok, nil
}

func (f *fakeCache) FillSale(_ context.Context, s domain.Sale) error {
	f.inc("FillSale")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sales[saleKey{s.TenantID, s.ID}]; !ok {
		f.sales[saleKey{s.TenantID, s.ID}] = s
	}
	return nil
}

func (f *fakeCache) ReplaceSale(_ context.Context, s domain.Sale) error {
	f.inc("ReplaceSale")
	if f.ReplaceErr != nil {
		return f.ReplaceErr
	}
	f.put(s)
	return nil
}

func (f *fakeCache) put(s domain.Sale) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sales[saleKey{s.TenantID, s.ID}] = s
}

func (f *fakeCache) get(tenantID, saleID uuid.UUID) (domain.Sale, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sales[saleKey{tenantID, saleID}]
	return s, ok
}

// ---------------------------------------------------------------------------------------------
// TenantRepository, UserRepository, PasswordHasher, TokenIssuer

type fakeTenants struct {
	calls
	mu      sync.Mutex
	tenants map[string]domain.Tenant
}

var _ ports.TenantRepository = (*fakeTenants)(nil)

func newFakeTenants() *fakeTenants { return &fakeTenants{tenants: map[string]domain.Tenant{}} }

func (f *fakeTenants) EnsureTenant(_ context.Context, slug, name string) (domain.Tenant, error) {
	f.inc("EnsureTenant")
	return f.ensure(slug, name), nil
}

func (f *fakeTenants) ensure(slug, name string) domain.Tenant {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tenants[slug]; ok {
		return t
	}
	t := domain.Tenant{ID: uuid.New(), Slug: slug, Name: name}
	f.tenants[slug] = t
	return t
}

func (f *fakeTenants) TenantBySlug(_ context.Context, slug string) (domain.Tenant, error) {
	f.inc("TenantBySlug")
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tenants[slug]
	if !ok {
		return domain.Tenant{}, domain.ErrTenantNotFound
	}
	return t, nil
}

type fakeUsers struct {
	calls
	mu    sync.Mutex
	users map[uuid.UUID]domain.User
}

var _ ports.UserRepository = (*fakeUsers)(nil)

func newFakeUsers() *fakeUsers { return &fakeUsers{users: map[uuid.UUID]domain.User{}} }

func (f *fakeUsers) CreateUser(_ context.Context, u domain.User) error {
	f.inc("CreateUser")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.users {
		if o.TenantID == u.TenantID && o.Email == u.Email {
			return domain.ErrEmailTaken
		}
	}
	f.users[u.ID] = u
	return nil
}

func (f *fakeUsers) UserByEmail(_ context.Context, tenantID uuid.UUID, email string) (domain.User, error) {
	f.inc("UserByEmail")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.TenantID == tenantID && u.Email == email {
			return u, nil
		}
	}
	return domain.User{}, domain.ErrUserNotFound
}

func (f *fakeUsers) UserByID(_ context.Context, tenantID, id uuid.UUID) (domain.User, error) {
	f.inc("UserByID")
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok || u.TenantID != tenantID {
		return domain.User{}, domain.ErrUserNotFound
	}
	return u, nil
}

func (f *fakeUsers) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.users)
}

// fakeHasher "hashes" by prefixing; like bcrypt, a hash it did not make is an error.
type fakeHasher struct {
	calls
	mu       sync.Mutex
	verified []string // the hashes Verify was asked about
}

var _ ports.PasswordHasher = (*fakeHasher)(nil)

const hashPrefix = "fakehash$"

func (f *fakeHasher) Hash(password string) (string, error) {
	f.inc("Hash")
	return hashPrefix + password, nil
}

func (f *fakeHasher) Verify(hash, password string) (bool, error) {
	f.inc("Verify")
	f.mu.Lock()
	f.verified = append(f.verified, hash)
	f.mu.Unlock()
	if !strings.HasPrefix(hash, hashPrefix) {
		return false, errors.New("malformed hash")
	}
	return hash == hashPrefix+password, nil
}

// fakeTokens issues "token:<user id>"; Verify accepts only a token it issued and returns the
// principal it was last issued for.
type fakeTokens struct {
	calls
	mu     sync.Mutex
	issued map[string]domain.Principal
	last   domain.Principal
}

var _ ports.TokenIssuer = (*fakeTokens)(nil)

func (f *fakeTokens) Issue(p domain.Principal) (string, time.Duration, error) {
	f.inc("Issue")
	tok := "token:" + p.UserID.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.issued == nil {
		f.issued = map[string]domain.Principal{}
	}
	f.issued[tok], f.last = p, p
	return tok, 15 * time.Minute, nil
}

func (f *fakeTokens) Verify(token string) (domain.Principal, error) {
	f.inc("Verify")
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.issued[token]; ok {
		return p, nil
	}
	return domain.Principal{}, domain.ErrUnauthenticated
}

// lastIssued is the principal of the latest Issue call.
func (f *fakeTokens) lastIssued() domain.Principal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// fakeSessions keeps sessions in memory like the Redis store: the current refresh hash per
// session, and revocation on a replayed (non-current) hash.
type fakeSessions struct {
	calls
	mu       sync.Mutex
	sessions map[uuid.UUID]fakeSession
}

type fakeSession struct {
	s    domain.Session
	hash string
	used map[string]bool
}

var _ ports.SessionStore = (*fakeSessions)(nil)

func newFakeSessions() *fakeSessions { return &fakeSessions{sessions: map[uuid.UUID]fakeSession{}} }

func (f *fakeSessions) CreateSession(_ context.Context, s domain.Session, hash string, _ time.Duration) error {
	f.inc("CreateSession")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[s.ID] = fakeSession{s: s, hash: hash}
	return nil
}

func (f *fakeSessions) RotateRefresh(_ context.Context, id uuid.UUID, presented, next string, _ time.Duration) (domain.Session, error) {
	f.inc("RotateRefresh")
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.sessions[id]
	switch {
	case !ok:
		return domain.Session{}, domain.ErrInvalidRefreshToken
	case cur.hash != presented && cur.used[presented]:
		delete(f.sessions, id)
		return domain.Session{}, domain.ErrRefreshTokenReused
	case cur.hash != presented:
		return domain.Session{}, domain.ErrInvalidRefreshToken
	}
	if cur.used == nil {
		cur.used = map[string]bool{}
	}
	cur.used[presented] = true
	cur.hash = next
	f.sessions[id] = cur
	return cur.s, nil
}

func (f *fakeSessions) SessionActive(_ context.Context, id uuid.UUID) (bool, error) {
	f.inc("SessionActive")
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sessions[id]
	return ok, nil
}

func (f *fakeSessions) RevokeSession(_ context.Context, id uuid.UUID) error {
	f.inc("RevokeSession")
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, id)
	return nil
}

func (f *fakeSessions) RevokeUserSessions(_ context.Context, tenantID, userID uuid.UUID) (int, error) {
	f.inc("RevokeUserSessions")
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id, s := range f.sessions {
		if s.s.TenantID == tenantID && s.s.UserID == userID {
			delete(f.sessions, id)
			n++
		}
	}
	return n, nil
}

// ---------------------------------------------------------------------------------------------
// environment

// fakeNodes is the API node registry: the nodes listed in dead died holding orders.
type fakeNodes struct {
	mu        sync.Mutex
	dead      []string
	forgotten []string
}

func (f *fakeNodes) Dead(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dead), nil
}

func (f *fakeNodes) Forget(_ context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = slices.DeleteFunc(f.dead, func(n string) bool { return n == node })
	f.forgotten = append(f.forgotten, node)
	return nil
}

// fakeScheduler records the sales whose live events were (re)scheduled.
type fakeScheduler struct {
	mu    sync.Mutex
	sales []domain.Sale
}

func (f *fakeScheduler) ScheduleSale(_ context.Context, s domain.Sale) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sales = append(f.sales, s)
	return nil
}

// fakeLive records the live events use cases publish and the sales whose stock changed.
type fakeLive struct {
	mu      sync.Mutex
	events  []domain.LiveEvent
	changed []uuid.UUID
}

func (f *fakeLive) StockChanged(_, saleID uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, saleID)
}

func (f *fakeLive) Publish(_ context.Context, e domain.LiveEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	return nil
}

// published lists the events of type typ published so far.
func (f *fakeLive) published(typ string) []domain.LiveEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.LiveEvent
	for _, e := range f.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// env is an Application wired to fresh fakes, with one tenant ready.
type env struct {
	clock   *clock
	tenants *fakeTenants
	users   *fakeUsers
	sales   *fakeSales
	orders  *fakeOrders
	inv     *fakeInventory
	queue   *fakeQueue
	nodes   *fakeNodes
	live    *fakeLive
	// scheduler records the sales scheduled; tickets is the WebSocket ticket store.
	scheduler *fakeScheduler
	tickets   *memTickets
	cache     *fakeCache
	hasher    *fakeHasher
	tokens    *fakeTokens
	sess      *fakeSessions
	log       *logRecorder

	outbox    *fakeOutbox
	publisher *fakePublisher
	processed *fakeProcessed
	stats     *fakeStats
	counters  *fakeCounters
	mailer    *fakeMailer
	metrics   *fakeMetrics

	settings app.Settings
	app      *app.Application
	tenant   domain.Tenant
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with settings changed by tune (if not nil) before the use-cases are wired.
func newEnvWith(t *testing.T, tune func(s *app.Settings)) *env {
	t.Helper()
	c := newClock()
	e := &env{
		clock: c, tenants: newFakeTenants(), users: newFakeUsers(), sales: newFakeSales(c.Now),
		orders: newFakeOrders(), inv: newFakeInventory(c.Now),
		queue: newFakeQueue(), nodes: &fakeNodes{}, live: &fakeLive{}, scheduler: &fakeScheduler{}, tickets: &memTickets{now: c.Now}, cache: newFakeCache(), hasher: &fakeHasher{}, tokens: &fakeTokens{},
		sess: newFakeSessions(), log: &logRecorder{}, settings: app.DefaultSettings(),
		outbox: newFakeOutbox(c.Now), publisher: &fakePublisher{}, processed: newFakeProcessed(),
		stats: newFakeStats(), counters: newFakeCounters(), mailer: &fakeMailer{}, metrics: newFakeMetrics(),
	}
	if tune != nil {
		tune(&e.settings)
	}
	e.tenant = e.tenants.ensure(domain.DefaultTenantSlug, "Default merchant")
	a, err := app.New(app.Deps{
		Tenants: e.tenants, Users: e.users, Sales: e.sales, Orders: e.orders, Inventory: e.inv,
		Purchases: e.inv, Nodes: e.nodes, Queue: e.queue, Dispatch: e.queue, Cache: e.cache, Hasher: e.hasher,
		Tokens: e.tokens, Sessions: e.sess, Outbox: e.outbox, Publisher: e.publisher, Processed: e.processed,
		Stats: e.stats, Counters: e.counters, Mailer: e.mailer, Metrics: e.metrics, Live: e.live,
		Scheduler: e.scheduler, Tickets: e.tickets, Log: slog.New(e.log), Now: c.Now,
	}, e.settings)
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	return e
}

func (e *env) shopperOf(tenantID uuid.UUID) domain.Principal {
	return domain.Principal{UserID: uuid.New(), TenantID: tenantID, Email: "shopper@example.com", Role: domain.RoleShopper}
}

func (e *env) adminOf(tenantID uuid.UUID) domain.Principal {
	return domain.Principal{UserID: uuid.New(), TenantID: tenantID, Email: "admin@example.com", Role: domain.RoleAdmin}
}

func (e *env) shopper() domain.Principal { return e.shopperOf(e.tenant.ID) }
func (e *env) admin() domain.Principal   { return e.adminOf(e.tenant.ID) }

// newSale is a sale of the env's tenant open from start to end (relative to now), stored in
// the repository only.
func (e *env) newSale(stock, limit int, start, end time.Duration) domain.Sale {
	now := e.clock.Now()
	s := domain.Sale{
		ID: uuid.New(), TenantID: e.tenant.ID, Name: "Drop", PriceCents: 1999, Currency: "EUR",
		TotalStock: stock, PerUserLimit: limit, StartsAt: now.Add(start), EndsAt: now.Add(end),
		CreatedAt: now, UpdatedAt: now,
	}
	e.sales.put(s)
	return s
}

// activeSale is an open sale in the repository and the inventory.
func (e *env) activeSale(t *testing.T, stock, limit int) domain.Sale {
	t.Helper()
	s := e.newSale(stock, limit, -time.Hour, time.Hour)
	e.loadInventory(t, s, 0)
	return s
}

func (e *env) loadInventory(t *testing.T, s domain.Sale, sold int) {
	t.Helper()
	if _, err := e.inv.load(s, sold); err != nil {
		t.Fatalf("load inventory: %v", err)
	}
}

// reserve takes stock directly in the inventory, as an earlier purchase did.
func (e *env) reserve(t *testing.T, s domain.Sale, buyer domain.Principal, qty int) domain.Reservation {
	t.Helper()
	res, err := e.inv.reserve(domain.Reservation{
		OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: buyer.UserID,
		Quantity: qty, IdempotencyKey: uuid.NewString(),
	})
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}
	return res.Reservation
}

// durable puts a confirmed order of buyer in s into the repository, as PostgreSQL holds it.
func (e *env) durable(s domain.Sale, buyer domain.Principal, qty int, key string) domain.Order {
	at := e.clock.Now().Add(-time.Minute)
	o := domain.Order{ID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: buyer.UserID, Quantity: qty,
		IdempotencyKey: key, Status: domain.OrderConfirmed, UnitPriceCents: s.PriceCents,
		AmountCents: s.PriceCents * int64(qty), Currency: s.Currency, CreatedAt: at, ConfirmedAt: &at}
	e.orders.put(o)
	return o
}

func (e *env) remaining(t *testing.T, s domain.Sale) int {
	t.Helper()
	st, ok := e.inv.state(s.TenantID, s.ID)
	if !ok {
		t.Fatalf("inventory of sale %s missing", s.ID)
	}
	return st.remaining
}

func scopeOf(p domain.Principal, key string) ports.IdempotencyScope {
	return ports.IdempotencyScope{TenantID: p.TenantID, UserID: p.UserID, Key: key}
}

// wantErr fails unless errors.Is(err, want).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want one matching %v", err, want)
	}
}

var errBoom = errors.New("boom: dependency unavailable")

// ---------------------------------------------------------------------------------------------
// Outbox, EventPublisher

type outboxEntry struct {
	e         domain.Event
	claimed   bool // held by a relay (the row lock)
	published bool
	attempts  int
	lastErr   string
}

// fakeOutbox is the outbox table: RelayPending claims the oldest unpublished events (skipping
// those another relay holds), publishes them outside the lock and records the outcome.
type fakeOutbox struct {
	calls
	now func() time.Time

	mu      sync.Mutex
	entries []*outboxEntry

	BacklogErr error
}

var _ ports.Outbox = (*fakeOutbox)(nil)

func newFakeOutbox(now func() time.Time) *fakeOutbox { return &fakeOutbox{now: now} }

func (f *fakeOutbox) RelayPending(ctx context.Context, limit int, publish func(context.Context, []domain.Event) error) (int, error) {
	f.inc("RelayPending")
	f.mu.Lock()
	var batch []*outboxEntry
	for _, en := range f.entries {
		if !en.published && !en.claimed {
			batch = append(batch, en)
		}
	}
	slices.SortFunc(batch, func(a, b *outboxEntry) int {
		if c := a.e.CreatedAt.Compare(b.e.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.e.ID.String(), b.e.ID.String())
	})
	if len(batch) > limit {
		batch = batch[:limit]
	}
	events := make([]domain.Event, len(batch))
	for i, en := range batch {
		en.claimed = true
		events[i] = en.e
	}
	f.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	err := publish(ctx, events)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, en := range batch {
		en.claimed = false
		en.attempts++
		if err != nil {
			en.lastErr = err.Error()
		} else {
			en.published, en.lastErr = true, ""
		}
	}
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	return len(batch), nil
}

func (f *fakeOutbox) Backlog(context.Context) (int, time.Duration, error) {
	f.inc("Backlog")
	if f.BacklogErr != nil {
		return 0, 0, f.BacklogErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pending := 0
	var oldest time.Time
	for _, en := range f.entries {
		if en.published {
			continue
		}
		pending++
		if oldest.IsZero() || en.e.CreatedAt.Before(oldest) {
			oldest = en.e.CreatedAt
		}
	}
	if pending == 0 {
		return 0, 0, nil
	}
	return pending, f.now().Sub(oldest), nil
}

// add puts events in the outbox, as SaveOrder does.
func (f *fakeOutbox) add(events ...domain.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range events {
		f.entries = append(f.entries, &outboxEntry{e: e})
	}
}

// entry is a copy of the event's row; ok is false if there is none.
func (f *fakeOutbox) entry(id uuid.UUID) (outboxEntry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, en := range f.entries {
		if en.e.ID == id {
			return *en, true
		}
	}
	return outboxEntry{}, false
}

// fakePublisher records every batch it is handed; OnPublish (if set) decides each call's
// outcome from its 1-based number.
type fakePublisher struct {
	calls
	mu        sync.Mutex
	batches   [][]domain.Event // every batch handed over
	delivered []domain.Event   // events of the batches acknowledged

	OnPublish func(call int, events []domain.Event) error
}

var _ ports.EventPublisher = (*fakePublisher)(nil)

func (f *fakePublisher) Publish(_ context.Context, events []domain.Event) error {
	f.inc("Publish")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, slices.Clone(events))
	var err error
	if f.OnPublish != nil {
		err = f.OnPublish(len(f.batches), events)
	}
	if err == nil {
		f.delivered = append(f.delivered, events...)
	}
	return err
}

// batchSizes lists the size of each batch handed over.
func (f *fakePublisher) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	sizes := make([]int, len(f.batches))
	for i, b := range f.batches {
		sizes[i] = len(b)
	}
	return sizes
}

func (f *fakePublisher) deliveredIDs() []uuid.UUID {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]uuid.UUID, len(f.delivered))
	for i, e := range f.delivered {
		ids[i] = e.ID
	}
	return ids
}

// ---------------------------------------------------------------------------------------------
// ProcessedEvents, SaleStatsRepository, SaleCounterRepository

type consumerEvent struct {
	consumer string
	event    uuid.UUID
}

type fakeProcessed struct {
	calls
	mu   sync.Mutex
	done map[consumerEvent]bool

	ProcessedErr, MarkErr error
}

var _ ports.ProcessedEvents = (*fakeProcessed)(nil)

func newFakeProcessed() *fakeProcessed { return &fakeProcessed{done: map[consumerEvent]bool{}} }

func (f *fakeProcessed) EventProcessed(_ context.Context, consumer string, id uuid.UUID) (bool, error) {
	f.inc("EventProcessed")
	if f.ProcessedErr != nil {
		return false, f.ProcessedErr
	}
	return f.isDone(consumer, id), nil
}

func (f *fakeProcessed) MarkEventProcessed(_ context.Context, consumer string, id uuid.UUID) error {
	f.inc("MarkEventProcessed")
	if f.MarkErr != nil {
		return f.MarkErr
	}
	f.mark(consumer, id)
	return nil
}

func (f *fakeProcessed) mark(consumer string, id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done[consumerEvent{consumer, id}] = true
}

func (f *fakeProcessed) isDone(consumer string, id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done[consumerEvent{consumer, id}]
}

// fakeStats keeps the analytics figures; an event applies once per consumer.
type fakeStats struct {
	calls
	mu      sync.Mutex
	applied map[consumerEvent]bool
	stats   map[saleKey]domain.SaleStats
	adds    []consumerEvent // every AddOrderToStats call, in order

	AddErr error
}

var _ ports.SaleStatsRepository = (*fakeStats)(nil)

func newFakeStats() *fakeStats {
	return &fakeStats{applied: map[consumerEvent]bool{}, stats: map[saleKey]domain.SaleStats{}}
}

func (f *fakeStats) AddOrderToStats(_ context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	f.inc("AddOrderToStats")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, consumerEvent{consumer, e.EventID})
	if f.AddErr != nil {
		return false, f.AddErr
	}
	k := consumerEvent{consumer, e.EventID}
	if f.applied[k] {
		return false, nil
	}
	f.applied[k] = true
	key := saleKey{e.TenantID, e.SaleID}
	s := f.stats[key]
	s.SaleID, s.Currency = e.SaleID, e.Currency
	s.Orders++
	s.Units += e.Quantity
	s.RevenueCents += e.AmountCents
	at := e.OrderedAt
	if s.FirstOrderAt == nil || at.Before(*s.FirstOrderAt) {
		s.FirstOrderAt = &at
	}
	if s.LastOrderAt == nil || at.After(*s.LastOrderAt) {
		s.LastOrderAt = &at
	}
	f.stats[key] = s
	return true, nil
}

func (f *fakeStats) SaleStats(_ context.Context, tenantID, saleID uuid.UUID) (domain.SaleStats, error) {
	f.inc("SaleStats")
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.stats[saleKey{tenantID, saleID}]; ok {
		return s, nil
	}
	return domain.SaleStats{SaleID: saleID}, nil
}

func (f *fakeStats) addCalls() []consumerEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.adds)
}

type driftCall struct {
	Sale  saleKey
	Drift int
}

// fakeCounters keeps PostgreSQL's sold counters; an event applies once per consumer.
type fakeCounters struct {
	calls
	mu      sync.Mutex
	applied map[consumerEvent]bool
	sold    map[saleKey]int
	drifts  []driftCall

	SoldErr, DriftErr error
}

var _ ports.SaleCounterRepository = (*fakeCounters)(nil)

func newFakeCounters() *fakeCounters {
	return &fakeCounters{applied: map[consumerEvent]bool{}, sold: map[saleKey]int{}}
}

func (f *fakeCounters) AddSoldUnits(_ context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	f.inc("AddSoldUnits")
	f.mu.Lock()
	defer f.mu.Unlock()
	k := consumerEvent{consumer, e.EventID}
	if f.applied[k] {
		return false, nil
	}
	f.applied[k] = true
	f.sold[saleKey{e.TenantID, e.SaleID}] += e.Quantity
	return true, nil
}

func (f *fakeCounters) SoldCounter(_ context.Context, tenantID, saleID uuid.UUID) (int, bool, error) {
	f.inc("SoldCounter")
	if f.SoldErr != nil {
		return 0, false, f.SoldErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.sold[saleKey{tenantID, saleID}]
	return n, ok, nil
}

func (f *fakeCounters) RecordDrift(_ context.Context, tenantID, saleID uuid.UUID, drift int) error {
	f.inc("RecordDrift")
	if f.DriftErr != nil {
		return f.DriftErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drifts = append(f.drifts, driftCall{saleKey{tenantID, saleID}, drift})
	return nil
}

func (f *fakeCounters) setSold(tenantID, saleID uuid.UUID, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sold[saleKey{tenantID, saleID}] = n
}

func (f *fakeCounters) soldOf(tenantID, saleID uuid.UUID) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.sold[saleKey{tenantID, saleID}]
	return n, ok
}

func (f *fakeCounters) driftCalls() []driftCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.drifts)
}

// ---------------------------------------------------------------------------------------------
// Mailer, Metrics

type fakeMailer struct {
	calls
	mu   sync.Mutex
	sent []domain.Mail

	Err error
}

var _ ports.Mailer = (*fakeMailer)(nil)

func (f *fakeMailer) Send(_ context.Context, m domain.Mail) error {
	f.inc("Send")
	if f.Err != nil {
		return f.Err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return nil
}

func (f *fakeMailer) mails() []domain.Mail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

type backlogReport struct {
	Pending int
	Oldest  time.Duration
}

type fakeMetrics struct {
	mu      sync.Mutex
	drift   map[saleKey]int
	drifts  []driftCall
	backlog []backlogReport
}

var _ ports.Metrics = (*fakeMetrics)(nil)

func newFakeMetrics() *fakeMetrics { return &fakeMetrics{drift: map[saleKey]int{}} }

func (f *fakeMetrics) InventoryDrift(tenantID, saleID uuid.UUID, units int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drift[saleKey{tenantID, saleID}] = units
	f.drifts = append(f.drifts, driftCall{saleKey{tenantID, saleID}, units})
}

func (f *fakeMetrics) OutboxBacklog(pending int, oldest time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backlog = append(f.backlog, backlogReport{pending, oldest})
}

func (f *fakeMetrics) backlogReports() []backlogReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.backlog)
}

func (f *fakeMetrics) driftGauges() map[saleKey]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneMap(f.drift)
}
