package app_test

// Fakes of the ports in internal/ports. The stores are the in-memory adapters
// (internal/adapters/memory), held to the same contract suites as Redis and PostgreSQL, each
// wrapped to count the calls it receives and let a test inject failures; the queue and the ports
// that are not stores (hasher, tokens, publisher, mailer, metrics) are test doubles written here.
// Every fake is safe for concurrent use. Methods starting with a lower case letter are test
// set-up and inspection helpers: they neither count nor fail.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// BeforeAdopt, if set, runs before each Adopt.
	BeforeAdopt func()
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

func (f *fakeInventory) Lookup(ctx context.Context, s ports.IdempotencyScope, saleID, session uuid.UUID) (ports.IdempotencyRecord, bool, error) {
	f.inc("Lookup")
	return f.mem.Lookup(ctx, s, saleID, session)
}

func (f *fakeInventory) GateInPurchase() bool { return false }

func (f *fakeInventory) AdmissionInPurchase() bool { return false }

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
	if f.BeforeAdopt != nil {
		f.BeforeAdopt()
	}
	return f.mem.Adopt(ctx, r)
}

func (f *fakeInventory) RestoreSale(ctx context.Context, s domain.Sale, orders []domain.Order, high ports.HighWater,
	fence time.Time) (ports.Restored, error) {
	f.inc("RestoreSale")
	if f.SyncErr != nil {
		return ports.Restored{}, f.SyncErr
	}
	return f.mem.RestoreSale(ctx, s, orders, high, fence)
}

func (f *fakeInventory) Fence(ctx context.Context, tenantID, saleID uuid.UUID, until time.Time) error {
	f.inc("Fence")
	return f.mem.Fence(ctx, tenantID, saleID, until)
}

func (f *fakeInventory) SettleTransfers(ctx context.Context, tenantID, saleID uuid.UUID) (int, error) {
	f.inc("SettleTransfers")
	return f.mem.SettleTransfers(ctx, tenantID, saleID)
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
// Repositories: one memory.Store (held to the storetest contract, as PostgreSQL is) behind a
// thin wrapper per port. They share its data as the tables do: SaveOrder's events are the
// outbox's, SoldUnits counts the confirmed orders, an order needs its sale and buyer.

// mustSetUp panics on a set-up step the store refused: the test arranged data it cannot hold.
func mustSetUp(err error) {
	if err != nil {
		panic(fmt.Sprintf("test set-up refused by the store: %v", err))
	}
}

type fakeSales struct {
	calls
	mem *memory.Store

	CreateErr, SoldErr error
	// CommitErr makes UpdateSale fail after its update function succeeded: the commit failed,
	// and the store keeps the sale as it was.
	CommitErr error
}

var _ ports.SaleRepository = (*fakeSales)(nil)

func (f *fakeSales) CreateSale(ctx context.Context, s domain.Sale) error {
	f.inc("CreateSale")
	if f.CreateErr != nil {
		return f.CreateErr
	}
	return f.mem.CreateSale(ctx, s)
}

func (f *fakeSales) Sale(ctx context.Context, tenantID, id uuid.UUID) (domain.Sale, error) {
	f.inc("Sale")
	return f.mem.Sale(ctx, tenantID, id)
}

func (f *fakeSales) ListSales(ctx context.Context, tenantID uuid.UUID, flt ports.SaleFilter) ([]domain.Sale, error) {
	f.inc("ListSales")
	return f.mem.ListSales(ctx, tenantID, flt)
}

func (f *fakeSales) UpdateSale(ctx context.Context, tenantID, id uuid.UUID,
	update func(ctx context.Context, s domain.Sale) (domain.Sale, error)) (domain.Sale, error) {
	f.inc("UpdateSale")
	return f.mem.UpdateSale(ctx, tenantID, id, func(ctx context.Context, s domain.Sale) (domain.Sale, error) {
		next, err := update(ctx, s)
		if err == nil && f.CommitErr != nil {
			return s, f.CommitErr
		}
		return next, err
	})
}

func (f *fakeSales) LiveSales(ctx context.Context, since time.Time) ([]ports.SaleRef, error) {
	f.inc("LiveSales")
	return f.mem.LiveSales(ctx, since)
}

func (f *fakeSales) TenantLiveSaleIDs(ctx context.Context, tenantID uuid.UUID, since time.Time) ([]uuid.UUID, error) {
	f.inc("TenantLiveSaleIDs")
	return f.mem.TenantLiveSaleIDs(ctx, tenantID, since)
}

func (f *fakeSales) CloseSales(ctx context.Context, cutoff time.Time) (int64, error) {
	f.inc("CloseSales")
	return f.mem.CloseSales(ctx, cutoff)
}

func (f *fakeSales) SoldUnits(ctx context.Context, tenantID, saleID uuid.UUID) (int, error) {
	f.inc("SoldUnits")
	if f.SoldErr != nil {
		return 0, f.SoldErr
	}
	return f.mem.SoldUnits(ctx, tenantID, saleID)
}

// put stores s: created, or an existing sale changed to it.
func (f *fakeSales) put(s domain.Sale) {
	if _, ok := f.mem.StoredSale(s.ID); !ok {
		mustSetUp(f.mem.CreateSale(ctx, s))
		return
	}
	_, err := f.mem.UpdateSale(ctx, s.TenantID, s.ID, func(context.Context, domain.Sale) (domain.Sale, error) { return s, nil })
	mustSetUp(err)
}

// get reads a sale whatever its tenant.
func (f *fakeSales) get(id uuid.UUID) (domain.Sale, bool) { return f.mem.StoredSale(id) }

// closeEnded closes the sales ended before cutoff, as the reconciler's pass does.
func (f *fakeSales) closeEnded(cutoff time.Time) {
	_, err := f.mem.CloseSales(ctx, cutoff)
	mustSetUp(err)
}

func (f *fakeSales) isClosed(id uuid.UUID) bool { return f.mem.SaleClosed(id) }

type fakeOrders struct {
	calls
	mem *memory.Store

	// OnSave, if set, decides each SaveOrder: persist says whether the write lands, err is what
	// the caller is told (persist && err != nil: the commit landed, the answer was lost).
	OnSave       func(o domain.Order) (persist bool, err error)
	OrderErr     error
	ConfirmedErr error
	// AfterOrder, if set, runs after each Order has read its answer (a write landing just then).
	AfterOrder func()
}

var _ ports.OrderRepository = (*fakeOrders)(nil)

func (f *fakeOrders) SaveOrder(ctx context.Context, o domain.Order, events ...domain.Event) (bool, error) {
	f.inc("SaveOrder")
	persist, err := true, error(nil)
	if f.OnSave != nil {
		persist, err = f.OnSave(o)
	}
	if !persist {
		return false, err
	}
	created, saveErr := f.mem.SaveOrder(ctx, o, events...)
	if err != nil {
		return false, err
	}
	return created, saveErr
}

func (f *fakeOrders) Order(ctx context.Context, tenantID, id uuid.UUID) (domain.Order, error) {
	f.inc("Order")
	if f.OrderErr != nil {
		return domain.Order{}, f.OrderErr
	}
	o, err := f.mem.Order(ctx, tenantID, id)
	if f.AfterOrder != nil {
		f.AfterOrder()
	}
	return o, err
}

func (f *fakeOrders) ListOrders(ctx context.Context, tenantID, userID uuid.UUID, after *ports.OrderCursor, limit int) ([]domain.Order, error) {
	f.inc("ListOrders")
	return f.mem.ListOrders(ctx, tenantID, userID, after, limit)
}

func (f *fakeOrders) ConfirmedOrderIDs(ctx context.Context, tenantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	f.inc("ConfirmedOrderIDs")
	if f.ConfirmedErr != nil {
		return nil, f.ConfirmedErr
	}
	return f.mem.ConfirmedOrderIDs(ctx, tenantID, ids)
}

func (f *fakeOrders) ReservationHighWaters(ctx context.Context, tenantID, saleID uuid.UUID, shards int) ([]ports.HighWater, error) {
	f.inc("ReservationHighWaters")
	if f.ConfirmedErr != nil {
		return nil, f.ConfirmedErr
	}
	return f.mem.ReservationHighWaters(ctx, tenantID, saleID, shards)
}

func (f *fakeOrders) SaleOrders(ctx context.Context, tenantID, saleID uuid.UUID) ([]domain.Order, error) {
	f.inc("SaleOrders")
	if f.ConfirmedErr != nil {
		return nil, f.ConfirmedErr
	}
	return f.mem.SaleOrders(ctx, tenantID, saleID)
}

// get reads an order whatever its tenant.
func (f *fakeOrders) get(id uuid.UUID) (domain.Order, bool) { return f.mem.StoredOrder(id) }

// put saves o, as an earlier write did.
func (f *fakeOrders) put(o domain.Order) {
	_, err := f.mem.SaveOrder(ctx, o)
	mustSetUp(err)
}

// savedEvents are the events written with the orders, in the order they were written.
func (f *fakeOrders) savedEvents() []domain.Event {
	rows := f.mem.OutboxRows()
	events := make([]domain.Event, len(rows))
	for i, r := range rows {
		events[i] = r.Event
	}
	return events
}

// ---------------------------------------------------------------------------------------------
// OrderQueue

type task struct {
	R     domain.Reservation
	State ports.TaskState
	// Stranded: running, by no worker (StrandedOrders).
	Stranded bool
}

type fakeQueue struct {
	calls
	mu    sync.Mutex
	tasks map[uuid.UUID]task

	EnqueueErr error
}

var _ ports.Dispatcher = (*fakeQueue)(nil)

// Recent lists the orders queued for the sale, oldest first, as the dispatcher remembers them.
func (f *fakeQueue) Recent(tenantID, saleID uuid.UUID) []domain.Reservation {
	f.inc("Recent")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.Reservation
	for _, t := range f.tasks {
		if t.R.TenantID == tenantID && t.R.SaleID == saleID {
			out = append(out, t.R)
		}
	}
	slices.SortFunc(out, func(a, b domain.Reservation) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

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

func (f *fakeQueue) StrandedOrders(_ context.Context, limit int) ([]domain.Reservation, error) {
	f.inc("StrandedOrders")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.Reservation
	for _, t := range f.tasks {
		if t.Stranded && len(out) < limit {
			out = append(out, t.R)
		}
	}
	return out, nil
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
	mem *memory.SaleCache

	ReplaceErr error
}

var _ ports.SaleCache = (*fakeCache)(nil)

func (f *fakeCache) CachedSale(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Sale, bool, error) {
	f.inc("CachedSale")
	return f.mem.CachedSale(ctx, tenantID, saleID)
}

func (f *fakeCache) FillSale(ctx context.Context, s domain.Sale) error {
	f.inc("FillSale")
	return f.mem.FillSale(ctx, s)
}

func (f *fakeCache) ReplaceSale(ctx context.Context, s domain.Sale) error {
	f.inc("ReplaceSale")
	if f.ReplaceErr != nil {
		return f.ReplaceErr
	}
	return f.mem.ReplaceSale(ctx, s)
}

func (f *fakeCache) put(s domain.Sale) { mustSetUp(f.mem.ReplaceSale(ctx, s)) }

func (f *fakeCache) get(tenantID, saleID uuid.UUID) (domain.Sale, bool) {
	s, ok, _ := f.mem.CachedSale(ctx, tenantID, saleID)
	return s, ok
}

// ---------------------------------------------------------------------------------------------
// TenantRepository, UserRepository, PasswordHasher, TokenIssuer

type fakeTenants struct {
	calls
	mem *memory.Store
}

var _ ports.TenantRepository = (*fakeTenants)(nil)

func (f *fakeTenants) EnsureTenant(ctx context.Context, slug, name string) (domain.Tenant, error) {
	f.inc("EnsureTenant")
	return f.mem.EnsureTenant(ctx, slug, name)
}

func (f *fakeTenants) TenantBySlug(ctx context.Context, slug string) (domain.Tenant, error) {
	f.inc("TenantBySlug")
	return f.mem.TenantBySlug(ctx, slug)
}

func (f *fakeTenants) ensure(slug, name string) domain.Tenant {
	t, err := f.mem.EnsureTenant(ctx, slug, name)
	mustSetUp(err)
	return t
}

type fakeUsers struct {
	calls
	mem *memory.Store

	// ReplaceErr makes ReplacePasswordHash fail.
	ReplaceErr error
}

var _ ports.UserRepository = (*fakeUsers)(nil)

func (f *fakeUsers) CreateUser(ctx context.Context, u domain.User) error {
	f.inc("CreateUser")
	return f.mem.CreateUser(ctx, u)
}

func (f *fakeUsers) UserByEmail(ctx context.Context, tenantID uuid.UUID, email string) (domain.User, error) {
	f.inc("UserByEmail")
	return f.mem.UserByEmail(ctx, tenantID, email)
}

func (f *fakeUsers) UserByID(ctx context.Context, tenantID, id uuid.UUID) (domain.User, error) {
	f.inc("UserByID")
	return f.mem.UserByID(ctx, tenantID, id)
}

func (f *fakeUsers) ReplacePasswordHash(ctx context.Context, tenantID, id uuid.UUID, oldHash, newHash string) (bool, error) {
	f.inc("ReplacePasswordHash")
	if f.ReplaceErr != nil {
		return false, f.ReplaceErr
	}
	return f.mem.ReplacePasswordHash(ctx, tenantID, id, oldHash, newHash)
}

func (f *fakeUsers) count() int { return f.mem.UserCount() }

// fakeHasher "hashes" by prefixing; like bcrypt, a hash it did not make is an error. A hash with
// staleHashPrefix was made at an older cost: it still verifies, and needs a rehash.
type fakeHasher struct {
	calls
	mu       sync.Mutex
	verified []string // the hashes Verify was asked about
}

var _ ports.PasswordHasher = (*fakeHasher)(nil)

const (
	hashPrefix      = "fakehash$"
	staleHashPrefix = "fakehash-old-cost$"
)

func (f *fakeHasher) Hash(password string) (string, error) {
	f.inc("Hash")
	return hashPrefix + password, nil
}

func (f *fakeHasher) Verify(hash, password string) (bool, error) {
	f.inc("Verify")
	f.mu.Lock()
	f.verified = append(f.verified, hash)
	f.mu.Unlock()
	if !strings.HasPrefix(hash, hashPrefix) && !strings.HasPrefix(hash, staleHashPrefix) {
		return false, errors.New("malformed hash")
	}
	return hash == hashPrefix+password || hash == staleHashPrefix+password, nil
}

func (f *fakeHasher) NeedsRehash(hash string) bool {
	f.inc("NeedsRehash")
	return strings.HasPrefix(hash, staleHashPrefix)
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

// fakeSessions is the in-memory session store (held to the sessiontest contract, as the Redis
// store is), on the test's clock, with call counts.
type fakeSessions struct {
	calls
	mem *memory.Sessions
}

var _ ports.SessionStore = (*fakeSessions)(nil)

func (f *fakeSessions) CreateSession(ctx context.Context, s domain.Session, hash string, ttl time.Duration) error {
	f.inc("CreateSession")
	return f.mem.CreateSession(ctx, s, hash, ttl)
}

func (f *fakeSessions) RotateRefresh(ctx context.Context, id uuid.UUID, presented, next string, ttl time.Duration) (domain.Session, error) {
	f.inc("RotateRefresh")
	return f.mem.RotateRefresh(ctx, id, presented, next, ttl)
}

func (f *fakeSessions) SessionActive(ctx context.Context, id uuid.UUID) (bool, error) {
	f.inc("SessionActive")
	return f.mem.SessionActive(ctx, id)
}

func (f *fakeSessions) RevokeSession(ctx context.Context, id uuid.UUID) error {
	f.inc("RevokeSession")
	return f.mem.RevokeSession(ctx, id)
}

func (f *fakeSessions) RevokeUserSessions(ctx context.Context, tenantID, userID uuid.UUID) (int, error) {
	f.inc("RevokeUserSessions")
	return f.mem.RevokeUserSessions(ctx, tenantID, userID)
}

// ---------------------------------------------------------------------------------------------
// environment

// fakeNodes is the API node registry: the nodes listed in dead died holding orders.
// fakeEpoch is the store's epoch: held once stamped, until lose (the store lost its data).
type fakeEpoch struct {
	mu     sync.Mutex
	held   bool
	token  string
	stamps int
}

func (f *fakeEpoch) BeginCheck(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = uuid.NewString()
	return f.token, nil
}

func (f *fakeEpoch) Stamp(_ context.Context, token string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token != f.token {
		return false, nil
	}
	f.held, f.token = true, ""
	f.stamps++
	return true, nil
}

func (f *fakeEpoch) Held(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held, nil
}

// lose is the store losing its data: the epoch and a pass's token with it.
func (f *fakeEpoch) lose() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held, f.token = false, ""
}

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
	store   *memory.Store // the repositories' data
	tenants *fakeTenants
	users   *fakeUsers
	sales   *fakeSales
	orders  *fakeOrders
	inv     *fakeInventory
	queue   *fakeQueue
	nodes   *fakeNodes
	epoch   *fakeEpoch
	live    *fakeLive
	rooms   *fakeRooms
	records *fakeRecords
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
	store := memory.NewStore(c.Now)
	e := &env{
		clock: c, store: store, tenants: &fakeTenants{mem: store}, users: &fakeUsers{mem: store},
		sales: &fakeSales{mem: store}, orders: &fakeOrders{mem: store}, inv: newFakeInventory(c.Now),
		queue: newFakeQueue(), nodes: &fakeNodes{}, epoch: &fakeEpoch{}, live: &fakeLive{}, scheduler: &fakeScheduler{},
		tickets: &memTickets{now: c.Now}, cache: &fakeCache{mem: memory.NewSaleCache()}, hasher: &fakeHasher{}, tokens: &fakeTokens{},
		sess: &fakeSessions{mem: memory.NewSessions(c.Now)}, log: &logRecorder{}, settings: app.DefaultSettings(),
		outbox: &fakeOutbox{mem: store}, publisher: &fakePublisher{}, processed: &fakeProcessed{mem: store},
		stats: &fakeStats{mem: store}, counters: &fakeCounters{mem: store}, mailer: &fakeMailer{}, metrics: newFakeMetrics(),
		rooms: newFakeRooms(), records: &fakeRecords{recs: map[uuid.UUID][]domain.Admitted{}},
	}
	if tune != nil {
		tune(&e.settings)
	}
	e.tenant = e.tenants.ensure(domain.DefaultTenantSlug, "Default merchant")
	a, err := app.New(app.Deps{
		Tenants: e.tenants, Users: e.users, Sales: e.sales, Orders: e.orders, Inventory: e.inv,
		Purchases: e.inv, Nodes: e.nodes, Epoch: e.epoch, Queue: e.queue, Dispatch: e.queue, Cache: e.cache, Hasher: e.hasher,
		Tokens: e.tokens, Sessions: e.sess, Outbox: e.outbox, Publisher: e.publisher, Processed: e.processed,
		Stats: e.stats, Counters: e.counters, Mailer: e.mailer, Metrics: e.metrics, Live: e.live,
		Scheduler: e.scheduler, Tickets: e.tickets, Log: slog.New(e.log), Now: c.Now,
		Broker: &fakeBroker{incarnation: "kept"}, Recovery: &fakeRecovery{outbox: e.outbox},
		Rooms: e.rooms, RoomSales: e.rooms, RoomRecords: e.records,
	}, e.settings)
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	return e
}

// shopperOf is a shopper of the tenant, stored as a user: an order refers to its buyer.
func (e *env) shopperOf(tenantID uuid.UUID) domain.Principal {
	p := domain.Principal{UserID: uuid.New(), TenantID: tenantID, Role: domain.RoleShopper}
	p.Email = "shopper-" + p.UserID.String() + "@example.com"
	mustSetUp(e.store.CreateUser(ctx, domain.User{ID: p.UserID, TenantID: tenantID, Email: p.Email,
		PasswordHash: "x", Role: p.Role, CreatedAt: e.clock.Now()}))
	return p
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

// outboxEntry is an outbox row's publishing record.
type outboxEntry struct {
	e         domain.Event
	published bool
	attempts  int
	lastErr   string
}

// fakeOutbox is the memory.Store's outbox, with call counts and an injected backlog failure.
type fakeOutbox struct {
	calls
	mem *memory.Store

	BacklogErr error
}

var _ ports.Outbox = (*fakeOutbox)(nil)

func (f *fakeOutbox) RelayPending(ctx context.Context, limit int, publish func(context.Context, []domain.Event) error) (int, error) {
	f.inc("RelayPending")
	return f.mem.RelayPending(ctx, limit, publish)
}

func (f *fakeOutbox) Backlog(ctx context.Context) (int, time.Duration, error) {
	f.inc("Backlog")
	if f.BacklogErr != nil {
		return 0, 0, f.BacklogErr
	}
	return f.mem.Backlog(ctx)
}

// add puts events in the outbox as its only writer, SaveOrder, does: each with an order of its
// own, in a sale and by a buyer made for it in the event's tenant.
func (f *fakeOutbox) add(events ...domain.Event) {
	for _, e := range events {
		s := domain.Sale{ID: uuid.New(), TenantID: e.TenantID, Name: "outbox", PriceCents: 1, Currency: "EUR",
			TotalStock: 1, PerUserLimit: 1, StartsAt: e.CreatedAt, EndsAt: e.CreatedAt.Add(time.Hour)}
		buyer := domain.User{ID: uuid.New(), TenantID: e.TenantID, Email: "outbox-" + uuid.NewString() + "@example.com",
			Role: domain.RoleShopper}
		mustSetUp(f.mem.CreateSale(ctx, s))
		mustSetUp(f.mem.CreateUser(ctx, buyer))
		_, err := f.mem.SaveOrder(ctx, domain.Order{ID: uuid.New(), TenantID: e.TenantID, SaleID: s.ID, UserID: buyer.ID,
			Quantity: 1, IdempotencyKey: "outbox", Status: domain.OrderConfirmed, Currency: "EUR", CreatedAt: e.CreatedAt}, e)
		mustSetUp(err)
	}
}

// entry is a copy of the event's row; ok is false if there is none.
func (f *fakeOutbox) entry(id uuid.UUID) (outboxEntry, bool) {
	for _, r := range f.mem.OutboxRows() {
		if r.Event.ID == id {
			return outboxEntry{e: r.Event, published: r.PublishedAt != nil, attempts: r.Attempts, lastErr: r.LastError}, true
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
// ProcessedEvents, SaleStatsRepository, SaleCounterRepository: the memory.Store's, whose
// processed events are one record for all three (an event applies once per consumer).

type consumerEvent struct {
	consumer string
	event    uuid.UUID
}

type fakeProcessed struct {
	calls
	mem *memory.Store

	ProcessedErr, MarkErr error
	// failMarks fails that many marks more with errBoom (a database outage that ends).
	failMarks atomic.Int32
}

var _ ports.ProcessedEvents = (*fakeProcessed)(nil)

func (f *fakeProcessed) EventProcessed(ctx context.Context, consumer string, id uuid.UUID) (bool, error) {
	f.inc("EventProcessed")
	if f.ProcessedErr != nil {
		return false, f.ProcessedErr
	}
	return f.mem.EventProcessed(ctx, consumer, id)
}

func (f *fakeProcessed) MarkEventProcessed(ctx context.Context, consumer string, id uuid.UUID) error {
	f.inc("MarkEventProcessed")
	if f.MarkErr != nil {
		return f.MarkErr
	}
	if f.failMarks.Add(-1) >= 0 {
		return errBoom
	}
	return f.mem.MarkEventProcessed(ctx, consumer, id)
}

func (f *fakeProcessed) mark(consumer string, id uuid.UUID) {
	mustSetUp(f.mem.MarkEventProcessed(ctx, consumer, id))
}

func (f *fakeProcessed) isDone(consumer string, id uuid.UUID) bool {
	done, _ := f.mem.EventProcessed(ctx, consumer, id)
	return done
}

// fakeStats records every AddOrderToStats call.
type fakeStats struct {
	calls
	mem *memory.Store

	mu   sync.Mutex
	adds []consumerEvent // every AddOrderToStats call, in order

	AddErr error
}

var _ ports.SaleStatsRepository = (*fakeStats)(nil)

func (f *fakeStats) AddOrderToStats(ctx context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	f.inc("AddOrderToStats")
	f.mu.Lock()
	f.adds = append(f.adds, consumerEvent{consumer, e.EventID})
	f.mu.Unlock()
	if f.AddErr != nil {
		return false, f.AddErr
	}
	return f.mem.AddOrderToStats(ctx, consumer, e)
}

func (f *fakeStats) SaleStats(ctx context.Context, tenantID, saleID uuid.UUID) (domain.SaleStats, error) {
	f.inc("SaleStats")
	return f.mem.SaleStats(ctx, tenantID, saleID)
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

// fakeCounters records every drift written.
type fakeCounters struct {
	calls
	mem *memory.Store

	mu     sync.Mutex
	drifts []driftCall

	SoldErr, DriftErr error
}

var _ ports.SaleCounterRepository = (*fakeCounters)(nil)

func (f *fakeCounters) AddSoldUnits(ctx context.Context, consumer string, e domain.OrderConfirmedV1) (bool, error) {
	f.inc("AddSoldUnits")
	return f.mem.AddSoldUnits(ctx, consumer, e)
}

func (f *fakeCounters) SoldCounter(ctx context.Context, tenantID, saleID uuid.UUID) (int, bool, error) {
	f.inc("SoldCounter")
	if f.SoldErr != nil {
		return 0, false, f.SoldErr
	}
	return f.mem.SoldCounter(ctx, tenantID, saleID)
}

func (f *fakeCounters) RecordDrift(ctx context.Context, tenantID, saleID uuid.UUID, drift int) error {
	f.inc("RecordDrift")
	if f.DriftErr != nil {
		return f.DriftErr
	}
	f.mu.Lock()
	f.drifts = append(f.drifts, driftCall{saleKey{tenantID, saleID}, drift})
	f.mu.Unlock()
	return f.mem.RecordDrift(ctx, tenantID, saleID, drift)
}

// setSold sets the counter, as events counted (or lost, or counted twice) would have.
func (f *fakeCounters) setSold(tenantID, saleID uuid.UUID, n int) {
	f.mem.SetSoldCounter(tenantID, saleID, n)
}

func (f *fakeCounters) soldOf(tenantID, saleID uuid.UUID) (int, bool) {
	n, ok, _ := f.mem.SoldCounter(ctx, tenantID, saleID)
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

func (f *fakeMetrics) DriftChecked(live []ports.SaleRef) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.drift {
		if !slices.Contains(live, ports.SaleRef{TenantID: k.tenant, SaleID: k.sale}) {
			delete(f.drift, k)
		}
	}
}

// Overview gives the tenant's drift gauges.
func (f *fakeMetrics) Overview(_ context.Context, tenantID uuid.UUID) (ports.Overview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := ports.Overview{Purchases: map[string]uint64{}, Drift: map[uuid.UUID]int{}}
	for k, units := range f.drift {
		if k.tenant == tenantID {
			o.Drift[k.sale] = units
		}
	}
	return o, nil
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
