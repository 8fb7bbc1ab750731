package app_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// fakeRooms is an in-memory ports.WaitingRoomStore: arrival order (no draw), no heartbeat
// expiry, the rate ignored; enough for the use-cases around it. The Redis adapter's tests hold
// the real rules (internal/adapters/redis/room_test.go).
type fakeRooms struct {
	mu       sync.Mutex
	waiting  map[uuid.UUID][]uuid.UUID
	admitted map[uuid.UUID]map[uuid.UUID]string // user -> "" (live) or the idempotency key that spent it
	sales    []domain.Sale
	until    time.Time
}

func newFakeRooms() *fakeRooms {
	return &fakeRooms{waiting: map[uuid.UUID][]uuid.UUID{}, admitted: map[uuid.UUID]map[uuid.UUID]string{}}
}

func (f *fakeRooms) place(s domain.Sale, user uuid.UUID) (domain.QueuePlace, bool) {
	counts := domain.RoomCounts{Waiting: len(f.waiting[s.ID]), Admitted: len(f.admitted[s.ID])}
	if key, ok := f.admitted[s.ID][user]; ok {
		st := domain.QueueAdmitted
		if key != "" {
			st = domain.QueueUsed
		}
		return domain.QueuePlace{State: st, AdmittedUntil: f.until, Room: counts}, true
	}
	if i := slices.Index(f.waiting[s.ID], user); i >= 0 {
		return domain.QueuePlace{State: domain.QueueWaiting, Position: i + 1, Key: float64(i + 2), Room: counts}, true
	}
	return domain.QueuePlace{}, false
}

func (f *fakeRooms) Join(_ context.Context, s domain.Sale, user uuid.UUID, _ float64) (domain.QueuePlace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.place(s, user); !ok {
		f.waiting[s.ID] = append(f.waiting[s.ID], user)
	}
	p, _ := f.place(s, user)
	return p, nil
}

func (f *fakeRooms) Place(_ context.Context, s domain.Sale, user uuid.UUID) (domain.QueuePlace, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.place(s, user)
	return p, ok, nil
}

func (f *fakeRooms) Admit(_ context.Context, s domain.Sale, remaining int, _ time.Duration) (domain.AdmitPass, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.admitted[s.ID] == nil {
		f.admitted[s.ID] = map[uuid.UUID]string{}
	}
	live := 0
	for _, key := range f.admitted[s.ID] {
		if key == "" {
			live++
		}
	}
	n := min(domain.CanAdmit(remaining, live, s.PerUserLimit), len(f.waiting[s.ID]), s.WaitingRoom.AdmitPerSecond)
	pass := domain.AdmitPass{Remaining: remaining, Changed: n > 0}
	for _, u := range f.waiting[s.ID][:n] {
		f.admitted[s.ID][u] = ""
		pass.Admitted = append(pass.Admitted, domain.Admitted{UserID: u, Until: f.until})
	}
	f.waiting[s.ID] = f.waiting[s.ID][n:]
	pass.Outstanding = live + n
	pass.Room = domain.RoomCounts{Waiting: len(f.waiting[s.ID]), Admitted: len(f.admitted[s.ID]),
		LikelySoldOut: len(f.waiting[s.ID]) > 0 && domain.CanAdmit(remaining, live+n, s.PerUserLimit) == 0,
		Closed:        remaining <= 0}
	return pass, nil
}

func (f *fakeRooms) UseAdmission(_ context.Context, _, saleID, user uuid.UUID, key string) (domain.AdmissionUse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	spent, ok := f.admitted[saleID][user]
	switch {
	case !ok:
		return domain.AdmissionNone, nil
	case spent == "" || spent == key:
		f.admitted[saleID][user] = key
		return domain.AdmissionSpent, nil
	default:
		return domain.AdmissionUsedUp, nil
	}
}

func (f *fakeRooms) Present(_ context.Context, s domain.Sale) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.admitted[s.ID] != nil, nil
}

func (f *fakeRooms) Restore(_ context.Context, s domain.Sale, admitted []domain.Admitted, bought map[uuid.UUID]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.admitted[s.ID] == nil {
		f.admitted[s.ID] = map[uuid.UUID]string{}
	}
	for _, a := range admitted {
		if _, ok := f.admitted[s.ID][a.UserID]; !ok {
			f.admitted[s.ID][a.UserID] = bought[a.UserID]
		}
		f.waiting[s.ID] = slices.DeleteFunc(f.waiting[s.ID], func(u uuid.UUID) bool { return u == a.UserID })
	}
	return nil
}

// lose forgets the sale's room, as Redis losing its data does.
func (f *fakeRooms) lose(s domain.Sale) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.admitted, s.ID)
	delete(f.waiting, s.ID)
}

// fakeRecords is an in-memory ports.RoomAdmissionRecords.
type fakeRecords struct {
	mu   sync.Mutex
	recs map[uuid.UUID][]domain.Admitted
	fail bool
}

func (f *fakeRecords) RecordAdmissions(_ context.Context, s domain.Sale, admitted []domain.Admitted) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("database down")
	}
	for _, a := range admitted {
		if !slices.ContainsFunc(f.recs[s.ID], func(r domain.Admitted) bool { return r.UserID == a.UserID }) {
			f.recs[s.ID] = append(f.recs[s.ID], a)
		}
	}
	return nil
}

func (f *fakeRecords) Admissions(_ context.Context, _, saleID uuid.UUID) ([]domain.Admitted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs[saleID]), nil
}

func (f *fakeRooms) LiveWaitingRoomSales(context.Context, time.Time) ([]domain.Sale, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sales), nil
}

// roomSale is an open sale with a waiting room, in the repository, the inventory and the rooms.
func (e *env) roomSale(t *testing.T, stock, limit int) domain.Sale {
	t.Helper()
	s := e.newSale(stock, limit, -time.Hour, time.Hour)
	s.WaitingRoom = domain.WaitingRoom{Enabled: true, AdmitPerSecond: 100, AdmissionTTL: time.Minute}
	e.sales.put(s)
	e.loadInventory(t, s, 0)
	e.rooms.mu.Lock()
	e.rooms.sales = append(e.rooms.sales, s)
	e.rooms.mu.Unlock()
	return s
}

// TestARoomSaleSellsOnlyToTheAdmitted: a purchase without an admission is refused
// (admission-required); the pass admits as many as the stock serves and tells each admitted
// shopper alone; the admission buys once (its own retry replays, another key is refused).
func TestARoomSaleSellsOnlyToTheAdmitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.roomSale(t, 3, 2)
	first, second, third := e.shopper(), e.shopper(), e.shopper()
	buy := func(p domain.Principal, key string) error {
		_, err := e.app.PlaceOrder.Handle(ctx, placeOrder(p, s, 1, key))
		return err
	}
	if err := buy(first, "key-0001"); !errors.Is(err, domain.ErrAdmissionRequired) {
		t.Fatalf("purchase before joining = %v, want admission-required", err)
	}
	for i, p := range []domain.Principal{first, second, third} {
		v, err := e.app.WaitingRoom.Join(ctx, p, s.ID)
		if err != nil || v.Place.State != domain.QueueWaiting || v.Place.Position != i+1 || v.Ticket == "" || !v.Drawn {
			t.Fatalf("join #%d = %+v, %v", i, v, err)
		}
	}
	rep, err := e.app.WaitingRoom.AdmitPass(ctx)
	if err != nil || rep.Rooms != 1 || rep.Admitted != 2 {
		t.Fatalf("pass = %+v, %v; want 2 admitted (3 units at 2 each)", rep, err)
	}
	admitted := e.live.published(domain.LiveQueueAdmitted)
	if len(admitted) != 2 || *admitted[0].UserID != first.UserID || *admitted[1].UserID != second.UserID {
		t.Fatalf("queue:admitted = %+v, want one to each of the first two", admitted)
	}
	if pos := e.live.published(domain.LiveQueuePosition); len(pos) != 1 || pos[0].UserID != nil ||
		!pos[0].Data.(domain.QueuePositionData).LikelySoldOut {
		t.Fatalf("queue:position = %+v, want one to the sale's clients: likely sold out", pos)
	}
	v, err := e.app.WaitingRoom.Status(ctx, first, s.ID)
	if err != nil || v.Place.State != domain.QueueAdmitted || v.AdmissionToken == "" {
		t.Fatalf("status of the admitted = %+v, %v", v, err)
	}
	if err := buy(third, "key-0003"); !errors.Is(err, domain.ErrAdmissionRequired) {
		t.Fatalf("purchase while waiting = %v, want admission-required", err)
	}
	if err := buy(first, "key-0001"); err != nil {
		t.Fatalf("admitted purchase: %v", err)
	}
	if res, err := e.app.PlaceOrder.Handle(ctx, placeOrder(first, s, 1, "key-0001")); err != nil || !res.Replayed {
		t.Fatalf("the same purchase again = %+v, %v; want its replay", res, err)
	}
	if err := buy(first, "key-0002"); !errors.Is(err, domain.ErrAdmissionRequired) {
		t.Fatalf("a second purchase on one admission = %v, want admission-required", err)
	}

	plain := e.activeSale(t, 3, 1)
	if _, err := e.app.WaitingRoom.Join(ctx, third, plain.ID); !errors.Is(err, domain.ErrNoWaitingRoom) {
		t.Fatalf("join a sale without a room = %v, want no-waiting-room", err)
	}
	if _, err := e.app.PlaceOrder.Handle(ctx, placeOrder(third, plain, 1, "key-0009")); err != nil {
		t.Fatalf("purchase of a sale without a room: %v", err)
	}
	if _, err := e.app.WaitingRoom.Status(ctx, e.shopper(), s.ID); !errors.Is(err, domain.ErrNotInQueue) {
		t.Fatalf("status of a stranger = %v, want not-in-queue", err)
	}
}

func placeOrder(p domain.Principal, s domain.Sale, qty int, key string) app.PlaceOrder {
	return app.PlaceOrder{Principal: p, SaleID: s.ID, Quantity: qty, IdempotencyKey: key}
}

// TestALostRoomIsPutBackBeforeTheNextAdmission: the pass records every admission it gives;
// when the room store loses the room (Redis lost its data), the next pass puts the recorded
// admissions back before it admits anyone: an admitted shopper who joined again is not admitted
// a second time, and one who bought keeps the admission spent. An admission whose record failed
// is recorded by a later pass.
func TestALostRoomIsPutBackBeforeTheNextAdmission(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.roomSale(t, 2, 1)
	first, second, third := e.shopper(), e.shopper(), e.shopper()
	for _, p := range []domain.Principal{first, second, third} {
		if _, err := e.app.WaitingRoom.Join(ctx, p, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.records.fail = true
	if rep, err := e.app.WaitingRoom.AdmitPass(ctx); err != nil || rep.Admitted != 2 {
		t.Fatalf("pass = %+v, %v; want 2 admitted (2 units)", rep, err)
	}
	if recs, _ := e.records.Admissions(ctx, s.TenantID, s.ID); len(recs) != 0 {
		t.Fatalf("recorded %v while the database was down", recs)
	}
	e.records.fail = false
	if _, err := e.app.WaitingRoom.AdmitPass(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, _ := e.records.Admissions(ctx, s.TenantID, s.ID); len(recs) != 2 {
		t.Fatalf("recorded %d admissions after the database came back, want 2", len(recs))
	}
	e.durable(s, first, 1, "bought-1") // first bought; PostgreSQL has the order

	e.rooms.lose(s)
	for _, p := range []domain.Principal{first, second, third} { // everyone joins again
		if _, err := e.app.WaitingRoom.Join(ctx, p, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.app.WaitingRoom.AdmitPass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.live.published(domain.LiveQueueAdmitted)[2:] {
		if *a.UserID == first.UserID || *a.UserID == second.UserID {
			t.Fatalf("pass after the loss = %+v: admitted %v a second time", rep, a.UserID)
		}
	}
	for _, c := range []struct {
		who  domain.Principal
		want domain.QueueState
	}{{first, domain.QueueUsed}, {second, domain.QueueAdmitted}} {
		if v, err := e.app.WaitingRoom.Status(ctx, c.who, s.ID); err != nil || v.Place.State != c.want {
			t.Fatalf("after the loss: %+v, %v; want %s", v.Place, err, c.want)
		}
	}
}
