package app_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

func TestReconcileSettlesAwaitedReservations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// arrange puts the world around the awaited reservation r in place.
		arrange    func(e *env, r domain.Reservation)
		wantReport app.ReconcileReport
		wantRes    domain.OrderStatus
		wantTask   ports.TaskState
		wantStock  int // remaining of 10 after one unit was reserved
	}{
		{
			name:       "never reached the database: queued",
			arrange:    func(*env, domain.Reservation) {},
			wantReport: app.ReconcileReport{Sales: 1, Requeued: 1},
			wantRes:    domain.OrderPending, wantTask: ports.TaskQueued, wantStock: 9,
		},
		{
			name: "already durable: marked confirmed",
			arrange: func(e *env, r domain.Reservation) {
				o := r.Order()
				o.Status = domain.OrderConfirmed
				e.orders.put(o)
			},
			wantReport: app.ReconcileReport{Sales: 1, Confirmed: 1},
			wantRes:    domain.OrderConfirmed, wantTask: ports.TaskAbsent, wantStock: 9,
		},
		{
			name:       "dead-lettered but not released: released",
			arrange:    func(e *env, r domain.Reservation) { e.queue.put(r, ports.TaskArchived) },
			wantReport: app.ReconcileReport{Sales: 1, Released: 1},
			wantRes:    domain.OrderFailed, wantTask: ports.TaskArchived, wantStock: 10,
		},
		{
			name:       "still queued: left to the worker",
			arrange:    func(e *env, r domain.Reservation) { e.queue.put(r, ports.TaskQueued) },
			wantReport: app.ReconcileReport{Sales: 1},
			wantRes:    domain.OrderPending, wantTask: ports.TaskQueued, wantStock: 9,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.activeSale(t, 10, 5)
			r := e.reserve(t, s, e.shopper(), 1)
			tc.arrange(e, r)
			e.clock.Advance(e.settings.ReconcileGrace + time.Second)

			rep, err := e.app.Reconcile.Handle(ctx)
			if err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			if rep != tc.wantReport {
				t.Errorf("report = %+v, want %+v", rep, tc.wantReport)
			}
			cur, _ := e.inv.reservation(s.TenantID, s.ID, r.OrderID)
			if cur.Status != tc.wantRes {
				t.Errorf("reservation status %s, want %s", cur.Status, tc.wantRes)
			}
			if st, _ := e.queue.OrderTaskState(ctx, r.OrderID); st != tc.wantTask {
				t.Errorf("task state %s, want %s", st, tc.wantTask)
			}
			if got := e.remaining(t, s); got != tc.wantStock {
				t.Errorf("remaining %d, want %d", got, tc.wantStock)
			}
			if tc.wantRes == domain.OrderFailed {
				if o, ok := e.orders.get(r.OrderID); !ok || o.Status != domain.OrderFailed {
					t.Errorf("failed order not recorded: %+v, %v", o, ok)
				}
			}
			if tc.wantRes != domain.OrderPending && e.inv.isAwaited(cur) {
				t.Error("settled reservation still awaited")
			}
		})
	}
}

// Reservations younger than the grace period are the worker's; a second pass changes nothing;
// a sale ended beyond the horizon is swept one last time (not closed yet, it may still hold
// reservations: LiveSales lists it) and closed, and then never swept again.
func TestReconcileGraceIdempotenceAndHorizon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	old := e.reserve(t, s, e.shopper(), 1)
	// A sale that ended beyond the horizon, with a reservation left in the inventory.
	gone := e.newSale(10, 5, -e.settings.SaleHorizon-2*time.Hour, -e.settings.SaleHorizon-time.Hour)
	open := gone
	open.StartsAt, open.EndsAt = e.clock.Now().Add(-time.Hour), e.clock.Now().Add(time.Hour)
	e.loadInventory(t, open, 0)
	stale := e.reserve(t, open, e.shopper(), 1)
	e.clock.Advance(e.settings.ReconcileGrace + time.Second)
	fresh := e.reserve(t, s, e.shopper(), 1)

	rep, err := e.app.Reconcile.Handle(ctx)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if want := (app.ReconcileReport{Sales: 2, Requeued: 2}); rep != want {
		t.Errorf("first pass = %+v, want %+v", rep, want)
	}
	for name, r := range map[string]domain.Reservation{"old": old, "stale (the last sweep of its sale)": stale} {
		if _, ok := e.queue.task(r.OrderID); !ok {
			t.Errorf("%s reservation not queued", name)
		}
	}
	if _, ok := e.queue.task(fresh.OrderID); ok {
		t.Errorf("reservation %s queued, want it left alone", fresh.OrderID)
	}
	if e.sales.count("CloseSales") != 1 || !e.sales.isClosed(gone.ID) {
		t.Error("sale past the horizon not closed")
	}

	rep, err = e.app.Reconcile.Handle(ctx)
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if want := (app.ReconcileReport{Sales: 1}); rep != want {
		t.Errorf("second pass = %+v, want %+v (the closed sale not swept)", rep, want)
	}
}

// A failure on one sale does not stop the pass, and is reported.
func TestReconcileReportsRepositoryFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	r := e.reserve(t, s, e.shopper(), 1)
	e.clock.Advance(e.settings.ReconcileGrace + time.Second)
	e.orders.ConfirmedErr = errBoom

	_, err := e.app.Reconcile.Handle(ctx)
	wantErr(t, err, errBoom)
	if e.queue.count("EnqueueOrder") != 0 || e.inv.count("Release") != 0 {
		t.Error("acted on a reservation without knowing whether it is durable")
	}
	if cur, _ := e.inv.reservation(s.TenantID, s.ID, r.OrderID); cur.Status != domain.OrderPending {
		t.Errorf("reservation %s, want pending", cur.Status)
	}
	if e.sales.count("CloseSales") != 1 {
		t.Error("CloseSales skipped after a sale failed")
	}
}

// An API node died with accepted orders in its dispatch buffer: they are queued at once, not
// after the grace; the orders of live nodes are left to their nodes; the dead node is forgotten.
func TestReconcileQueuesWhatADeadNodeHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	take := func(node string) domain.Reservation {
		res, err := e.inv.reserve(domain.Reservation{OrderID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID,
			UserID: uuid.New(), Quantity: 1, IdempotencyKey: uuid.NewString(), Node: node})
		if err != nil {
			t.Fatal(err)
		}
		return res.Reservation
	}
	held, alive := take("api-dead"), take("api-alive")

	if n, err := e.app.Reconcile.DeadNodes(ctx); err != nil || n != 0 {
		t.Fatalf("DeadNodes with every node alive = %d, %v; want nothing queued", n, err)
	}
	e.nodes.dead = []string{"api-dead"}
	n, err := e.app.Reconcile.DeadNodes(ctx)
	if err != nil || n != 1 {
		t.Fatalf("DeadNodes = %d, %v; want 1 queued", n, err)
	}
	if _, ok := e.queue.task(held.OrderID); !ok {
		t.Error("the dead node's order is not queued")
	}
	if _, ok := e.queue.task(alive.OrderID); ok {
		t.Error("a live node's order was queued behind its back")
	}
	if len(e.nodes.forgotten) != 1 || e.nodes.forgotten[0] != "api-dead" {
		t.Errorf("forgotten nodes = %v, want the dead one", e.nodes.forgotten)
	}
}

// A store that rolled back lost reservations the worker had written: the sale's inventory is
// found behind PostgreSQL's high-water mark and rebuilt, fenced, so that the lost units are not
// sold again; an inventory that is current is left alone.
func TestReconcileRebuildsARolledBackInventory(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s *app.Settings) { s.RestoreFence = 3 * time.Second })
	s := e.activeSale(t, 4, 4)
	other := e.activeSale(t, 4, 4)
	e.reserve(t, other, e.shopper(), 1)
	for range 3 {
		r := e.reserve(t, s, e.shopper(), 1)
		if err := e.app.WriteOrder.Handle(ctx, app.WriteOrder{Reservation: r, Attempt: 1}); err != nil {
			t.Fatalf("write order: %v", err)
		}
	}
	if n, err := e.app.Reconcile.RolledBack(ctx); err != nil || n != 0 {
		t.Fatalf("RolledBack with nothing lost = %d, %v; want 0", n, err)
	}
	e.inv.mem.RollBack(s.TenantID, s.ID, 2) // the last two confirmed reservations are gone
	if got := e.remaining(t, s); got != 3 {
		t.Fatalf("remaining after the rollback %d, want 3 (the setup is wrong)", got)
	}
	n, err := e.app.Reconcile.RolledBack(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RolledBack = %d, %v; want the one sale rebuilt", n, err)
	}
	if got := e.remaining(t, s); got != 1 {
		t.Errorf("remaining after the rebuild %d, want 1: three units are sold", got)
	}
	if got := e.remaining(t, other); got != 3 {
		t.Errorf("the other sale's remaining %d, want 3, untouched", got)
	}
	_, err = e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"})
	wantErr(t, err, domain.ErrUnavailable)
	e.clock.Advance(3 * time.Second)
	if _, err := e.app.PlaceOrder.Handle(ctx, app.PlaceOrder{Principal: e.shopper(), SaleID: s.ID, Quantity: 1, IdempotencyKey: "k"}); err != nil {
		t.Fatalf("purchase after the fence: %v", err)
	}
	if n, err := e.app.Reconcile.RolledBack(ctx); err != nil || n != 0 {
		t.Fatalf("RolledBack once rebuilt = %d, %v; want 0", n, err)
	}
}

// A task the queue holds as running by no worker (its worker died, or a Redis failover lost its
// end) has its order written at once, with its event, once; running tasks of live workers and
// orders written already are left alone.
func TestReconcileWritesStrandedOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 5)
	stranded, running := e.reserve(t, s, e.shopper(), 1), e.reserve(t, s, e.shopper(), 2)
	e.queue.mu.Lock()
	e.queue.tasks[stranded.OrderID] = task{R: stranded, State: ports.TaskQueued, Stranded: true}
	e.queue.tasks[running.OrderID] = task{R: running, State: ports.TaskQueued}
	e.queue.mu.Unlock()

	n, err := e.app.Reconcile.Stranded(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Stranded = %d, %v; want 1 written", n, err)
	}
	if o, ok := e.orders.get(stranded.OrderID); !ok || o.Status != domain.OrderConfirmed {
		t.Errorf("stranded order in the database: %+v, %v; want confirmed", o, ok)
	}
	if cur, _ := e.inv.reservation(s.TenantID, s.ID, stranded.OrderID); cur.Status != domain.OrderConfirmed {
		t.Errorf("stranded reservation %s, want confirmed", cur.Status)
	}
	if _, ok := e.orders.get(running.OrderID); ok {
		t.Error("the order of a task a worker runs was written behind its back")
	}
	if n, err := e.app.Reconcile.Stranded(ctx); err != nil || n != 0 {
		t.Fatalf("second Stranded = %d, %v; want nothing written again", n, err)
	}
	if got := len(e.orders.savedEvents()); got != 1 {
		t.Errorf("%d events written, want 1", got)
	}
}

// A store with no epoch (new, or it lost its data) is stamped by the first pass that found every
// live sale's inventory there, rebuilding those it had not at all; a store that holds the epoch
// is left to restore those on their first use; one that loses it again is rebuilt and stamped
// again.
func TestReconcileStampsTheEpochOnceEveryLiveSaleIsThere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loaded := e.activeSale(t, 4, 4)
	lost := e.newSale(5, 2, -time.Hour, time.Hour) // in PostgreSQL, not in the store
	if held, _ := e.epoch.Held(ctx); held {
		t.Fatal("a new store holds the epoch")
	}
	n, err := e.app.Reconcile.RolledBack(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RolledBack without an epoch = %d, %v; want the missing sale restored", n, err)
	}
	if _, ok := e.inv.state(lost.TenantID, lost.ID); !ok {
		t.Fatal("the sale the store lacked was not restored")
	}
	if held, _ := e.epoch.Held(ctx); !held || e.epoch.stamps != 1 {
		t.Fatalf("epoch held %v after %d stamps; want stamped once", held, e.epoch.stamps)
	}

	// Held: a pass looks at the inventories the store has only, and stamps nothing.
	later := e.newSale(3, 1, -time.Hour, time.Hour)
	if n, err := e.app.Reconcile.RolledBack(ctx); err != nil || n != 0 || e.epoch.stamps != 1 {
		t.Fatalf("RolledBack with the epoch = %d, %v, %d stamps; want nothing done", n, err, e.epoch.stamps)
	}
	if _, ok := e.inv.state(later.TenantID, later.ID); ok {
		t.Fatal("a pass with the epoch restored a sale it had not been asked for")
	}

	e.epoch.lose()
	if n, err := e.app.Reconcile.RolledBack(ctx); err != nil || n != 1 || e.epoch.stamps != 2 {
		t.Fatalf("RolledBack after the store lost the epoch = %d, %v, %d stamps; want the missing sale restored, stamped", n, err, e.epoch.stamps)
	}
	if got := e.remaining(t, loaded); got != 4 {
		t.Errorf("the loaded sale's remaining %d, want 4, untouched", got)
	}
}
