package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// fixture is one test's private database.
type fixture struct {
	t   *testing.T
	ctx context.Context
	st  *postgres.Store
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool, _ := testutil.NewPool(t, 10)
	return &fixture{t: t, ctx: context.Background(), st: postgres.NewStore(pool), now: pgNow()}
}

// pgNow is now as PostgreSQL stores it: UTC, microseconds.
func pgNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func (f *fixture) tenant(slug string) domain.Tenant {
	f.t.Helper()
	tn, err := f.st.EnsureTenant(f.ctx, slug, "Tenant "+slug)
	if err != nil {
		f.t.Fatalf("EnsureTenant(%s): %v", slug, err)
	}
	return tn
}

func (f *fixture) newUser(tenantID uuid.UUID, email string) domain.User {
	return domain.User{
		ID: uuid.New(), TenantID: tenantID, Email: email, PasswordHash: "hash-of-" + email,
		Role: domain.RoleShopper, CreatedAt: f.now,
	}
}

func (f *fixture) user(tenantID uuid.UUID, email string) domain.User {
	f.t.Helper()
	u := f.newUser(tenantID, email)
	if err := f.st.CreateUser(f.ctx, u); err != nil {
		f.t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// sale creates a sale of the tenant running from now+startsIn for lasts, created at now+created.
func (f *fixture) sale(tenantID uuid.UUID, name string, startsIn, lasts, created time.Duration) domain.Sale {
	f.t.Helper()
	s := domain.Sale{
		ID: uuid.New(), TenantID: tenantID, Name: name, PriceCents: 1999, Currency: "EUR",
		TotalStock: 100, PerUserLimit: 2, StartsAt: f.now.Add(startsIn), EndsAt: f.now.Add(startsIn + lasts),
		CreatedAt: f.now.Add(created), UpdatedAt: f.now.Add(created),
	}
	if err := f.st.CreateSale(f.ctx, s); err != nil {
		f.t.Fatalf("CreateSale(%s): %v", name, err)
	}
	return s
}

func (f *fixture) order(s domain.Sale, u domain.User, qty int, key string, status domain.OrderStatus, created time.Time) domain.Order {
	o := domain.Order{
		ID: uuid.New(), TenantID: s.TenantID, SaleID: s.ID, UserID: u.ID, Quantity: qty, IdempotencyKey: key,
		Status: status, UnitPriceCents: s.PriceCents, AmountCents: s.PriceCents * int64(qty), Currency: s.Currency,
		CreatedAt: created,
	}
	if status == domain.OrderConfirmed {
		c := created.Add(time.Second)
		o.ConfirmedAt = &c
	}
	return o
}

// save saves o with events (none unless given) and checks what it reports.
func (f *fixture) save(o domain.Order, wantCreated bool, events ...domain.Event) {
	f.t.Helper()
	created, err := f.st.SaveOrder(f.ctx, o, events...)
	if err != nil {
		f.t.Fatalf("SaveOrder(%s): %v", o.ID, err)
	}
	if created != wantCreated {
		f.t.Fatalf("SaveOrder(%s) created = %v, want %v", o.ID, created, wantCreated)
	}
}

func (f *fixture) readOrder(o domain.Order) domain.Order {
	f.t.Helper()
	got, err := f.st.Order(f.ctx, o.TenantID, o.ID)
	if err != nil {
		f.t.Fatalf("Order(%s): %v", o.ID, err)
	}
	return got
}

// checkOrder compares orders field by field (ConfirmedAt by value).
func checkOrder(t *testing.T, got, want domain.Order) {
	t.Helper()
	gc, wc := got.ConfirmedAt, want.ConfirmedAt
	got.ConfirmedAt, want.ConfirmedAt = nil, nil
	if got != want || (gc == nil) != (wc == nil) || (gc != nil && !gc.Equal(*wc)) {
		t.Fatalf("order = %+v (confirmed %v), want %+v (confirmed %v)", got, gc, want, wc)
	}
}

func sameIDs(got, want []uuid.UUID) bool {
	cmp := func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }
	g, w := slices.Clone(got), slices.Clone(want)
	slices.SortFunc(g, cmp)
	slices.SortFunc(w, cmp)
	return slices.Equal(g, w)
}

func saleIDs(sales []domain.Sale) []uuid.UUID {
	ids := make([]uuid.UUID, len(sales))
	for i, s := range sales {
		ids[i] = s.ID
	}
	return ids
}

func TestEnsureTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	first, err := f.st.EnsureTenant(f.ctx, "acme", "Acme Inc")
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == uuid.Nil || first.Slug != "acme" || first.Name != "Acme Inc" || first.CreatedAt.IsZero() {
		t.Fatalf("EnsureTenant = %+v", first)
	}
	// Again, even under another name: the same tenant, unchanged.
	again, err := f.st.EnsureTenant(f.ctx, "acme", "Renamed")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Name != "Acme Inc" || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("second EnsureTenant = %+v, want %+v", again, first)
	}
	bySlug, err := f.st.TenantBySlug(f.ctx, "acme")
	if err != nil || bySlug.ID != first.ID {
		t.Fatalf("TenantBySlug = %+v, %v", bySlug, err)
	}
	// Concurrent first calls agree on one tenant.
	ids := make(chan uuid.UUID, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			tn, err := f.st.EnsureTenant(f.ctx, "globex", "Globex")
			if err != nil {
				t.Error(err)
				return
			}
			ids <- tn.ID
		})
	}
	wg.Wait()
	close(ids)
	var one uuid.UUID
	for id := range ids {
		if one == uuid.Nil {
			one = id
		}
		if id != one {
			t.Fatalf("concurrent EnsureTenant returned %s and %s", one, id)
		}
	}
	if one == first.ID {
		t.Fatalf("two slugs share a tenant")
	}

	if _, err := f.st.TenantBySlug(f.ctx, "nobody"); !errors.Is(err, domain.ErrTenantNotFound) {
		t.Fatalf("TenantBySlug(unknown) = %v, want ErrTenantNotFound", err)
	}
	if _, err := f.st.EnsureTenant(f.ctx, "Not A Slug", "x"); err == nil {
		t.Fatalf("EnsureTenant accepted an invalid slug")
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.tenant("tenant-a"), f.tenant("tenant-b")
	alice := f.user(a.ID, "alice@example.com")

	checkUser := func(got, want domain.User) {
		t.Helper()
		if !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
		}
		got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
		if got != want {
			t.Fatalf("user = %+v, want %+v", got, want)
		}
	}
	got, err := f.st.UserByEmail(f.ctx, a.ID, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(got, alice)
	if got, err = f.st.UserByID(f.ctx, a.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	checkUser(got, alice)

	// The same address in the same tenant is taken; in another tenant it is free.
	err = f.st.CreateUser(f.ctx, f.newUser(a.ID, "alice@example.com"))
	if !errors.Is(err, domain.ErrEmailTaken) {
		t.Fatalf("duplicate email: %v, want ErrEmailTaken", err)
	}
	aliceB := f.user(b.ID, "alice@example.com")
	if got, err = f.st.UserByEmail(f.ctx, b.ID, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	checkUser(got, aliceB)
	if got, err = f.st.UserByEmail(f.ctx, a.ID, "alice@example.com"); err != nil || got.ID != alice.ID {
		t.Fatalf("tenant A's alice = %+v, %v", got, err)
	}
	admin := f.newUser(a.ID, "admin@example.com")
	admin.Role = domain.RoleAdmin
	if err := f.st.CreateUser(f.ctx, admin); err != nil {
		t.Fatal(err)
	}
	if got, err = f.st.UserByID(f.ctx, a.ID, admin.ID); err != nil || got.Role != domain.RoleAdmin {
		t.Fatalf("admin = %+v, %v", got, err)
	}

	for name, lookup := range map[string]func() (domain.User, error){
		"unknown email":         func() (domain.User, error) { return f.st.UserByEmail(f.ctx, a.ID, "bob@example.com") },
		"unknown id":            func() (domain.User, error) { return f.st.UserByID(f.ctx, a.ID, uuid.New()) },
		"email in other tenant": func() (domain.User, error) { return f.st.UserByEmail(f.ctx, b.ID, "admin@example.com") },
		"id in other tenant":    func() (domain.User, error) { return f.st.UserByID(f.ctx, b.ID, alice.ID) },
		"unknown tenant":        func() (domain.User, error) { return f.st.UserByEmail(f.ctx, uuid.New(), "alice@example.com") },
	} {
		if u, err := lookup(); !errors.Is(err, domain.ErrUserNotFound) {
			t.Errorf("%s: %+v, %v, want ErrUserNotFound", name, u, err)
		}
	}
}

func TestSaleCreateAndRead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.tenant("tenant-a"), f.tenant("tenant-b")
	s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)

	got, err := f.st.Sale(f.ctx, a.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Fatalf("Sale = %+v, want %+v", got, s)
	}
	for name, id := range map[string]struct{ tenant, sale uuid.UUID }{
		"other tenant": {b.ID, s.ID},
		"unknown sale": {a.ID, uuid.New()},
	} {
		if got, err := f.st.Sale(f.ctx, id.tenant, id.sale); !errors.Is(err, domain.ErrSaleNotFound) {
			t.Errorf("%s: Sale = %+v, %v, want ErrSaleNotFound", name, got, err)
		}
	}
	bad := s
	bad.ID, bad.TotalStock = uuid.New(), 0
	if err := f.st.CreateSale(f.ctx, bad); err == nil {
		t.Fatalf("CreateSale accepted a sale without stock")
	}
	dup := s
	dup.Name = "again"
	if err := f.st.CreateSale(f.ctx, dup); err == nil {
		t.Fatalf("CreateSale accepted an existing id")
	}
}

func TestListSales(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.tenant("tenant-a"), f.tenant("tenant-b")
	h := time.Hour
	running := f.sale(a.ID, "running", -h, 2*h, 0)
	upcoming := f.sale(a.ID, "upcoming", h, h, time.Second)
	later := f.sale(a.ID, "later", 3*h, h, 2*time.Second)
	endedRecent := f.sale(a.ID, "ended-recent", -3*h, 2*h, 3*time.Second)
	endedOld := f.sale(a.ID, "ended-old", -5*h, h, 4*time.Second)
	f.sale(b.ID, "b-running", -h, 2*h, 5*time.Second)
	f.sale(b.ID, "b-ended", -3*h, h, 6*time.Second)

	cases := []struct {
		name   string
		tenant uuid.UUID
		filter ports.SaleFilter
		want   []domain.Sale
	}{
		{"active, latest start first", a.ID, ports.SaleFilter{Limit: 10}, []domain.Sale{later, upcoming, running}},
		{"active, limited", a.ID, ports.SaleFilter{Limit: 2}, []domain.Sale{later, upcoming}},
		{"ended, latest end first", a.ID, ports.SaleFilter{EndedOnly: true, Limit: 10}, []domain.Sale{endedRecent, endedOld}},
		{"ended, limited", a.ID, ports.SaleFilter{EndedOnly: true, Limit: 1}, []domain.Sale{endedRecent}},
		{"any, newest first", a.ID, ports.SaleFilter{Any: true, Limit: 10}, []domain.Sale{endedOld, endedRecent, later, upcoming, running}},
		{"any, limited", a.ID, ports.SaleFilter{Any: true, Limit: 3}, []domain.Sale{endedOld, endedRecent, later}},
		{"unknown tenant", uuid.New(), ports.SaleFilter{Any: true, Limit: 10}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.st.ListSales(f.ctx, tc.tenant, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ListSales = %v, want %v", names(got), names(tc.want))
			}
		})
	}
	t.Run("tenant b", func(t *testing.T) {
		t.Parallel()
		active, err := f.st.ListSales(f.ctx, b.ID, ports.SaleFilter{Limit: 10})
		if err != nil || fmt.Sprint(names(active)) != "[b-running]" {
			t.Fatalf("tenant b active = %v, %v", names(active), err)
		}
		ended, err := f.st.ListSales(f.ctx, b.ID, ports.SaleFilter{EndedOnly: true, Limit: 10})
		if err != nil || fmt.Sprint(names(ended)) != "[b-ended]" {
			t.Fatalf("tenant b ended = %v, %v", names(ended), err)
		}
	})
}

func names(sales []domain.Sale) []string {
	out := make([]string, len(sales))
	for i, s := range sales {
		out[i] = s.Name
	}
	return out
}

func TestUpdateSale(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.tenant("tenant-a"), f.tenant("tenant-b")

	t.Run("stores what the update returns", func(t *testing.T) {
		t.Parallel()
		s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
		var seen domain.Sale
		saved, err := f.st.UpdateSale(f.ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
			seen = cur
			cur.Name, cur.PriceCents, cur.Currency, cur.TotalStock, cur.PerUserLimit = "renamed", 2500, "USD", 250, 5
			cur.EndsAt = cur.EndsAt.Add(time.Hour)
			cur.UpdatedAt = f.now.Add(time.Minute)
			return cur, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != s {
			t.Fatalf("update saw %+v, want %+v", seen, s)
		}
		want := s
		want.Name, want.PriceCents, want.Currency, want.TotalStock, want.PerUserLimit = "renamed", 2500, "USD", 250, 5
		want.EndsAt, want.UpdatedAt = s.EndsAt.Add(time.Hour), f.now.Add(time.Minute)
		if saved != want {
			t.Fatalf("UpdateSale = %+v, want %+v", saved, want)
		}
		if got, err := f.st.Sale(f.ctx, a.ID, s.ID); err != nil || got != want {
			t.Fatalf("stored = %+v, %v, want %+v", got, err, want)
		}
	})

	t.Run("an error rolls back", func(t *testing.T) {
		t.Parallel()
		s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
		boom := errors.New("boom")
		_, err := f.st.UpdateSale(f.ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
			cur.Name, cur.TotalStock = "changed", 1
			return cur, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("UpdateSale = %v, want the update's error", err)
		}
		if got, err := f.st.Sale(f.ctx, a.ID, s.ID); err != nil || got != s {
			t.Fatalf("after a failed update = %+v, %v, want unchanged %+v", got, err, s)
		}
		// A value the schema refuses fails the update and changes nothing either.
		_, err = f.st.UpdateSale(f.ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
			cur.Name, cur.TotalStock = "changed", 0
			return cur, nil
		})
		if err == nil {
			t.Fatalf("UpdateSale stored a sale without stock")
		}
		if got, err := f.st.Sale(f.ctx, a.ID, s.ID); err != nil || got != s {
			t.Fatalf("after a refused update = %+v, %v, want unchanged %+v", got, err, s)
		}
	})

	t.Run("another tenant's sale is not found", func(t *testing.T) {
		t.Parallel()
		s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
		called := false
		_, err := f.st.UpdateSale(f.ctx, b.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
			called = true
			return cur, nil
		})
		if !errors.Is(err, domain.ErrSaleNotFound) || called {
			t.Fatalf("UpdateSale(other tenant) = %v, update called %v; want ErrSaleNotFound, not called", err, called)
		}
	})

	t.Run("updates are serialised by the row lock", func(t *testing.T) {
		t.Parallel()
		s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
		const n = 25
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := f.st.UpdateSale(f.ctx, a.ID, s.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
					cur.TotalStock++
					return cur, nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := f.st.Sale(f.ctx, a.ID, s.ID)
		if err != nil || got.TotalStock != s.TotalStock+n {
			t.Fatalf("stock after %d concurrent +1 = %d, %v, want %d", n, got.TotalStock, err, s.TotalStock+n)
		}
	})
}

func TestSaveOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.tenant("tenant-a"), f.tenant("tenant-b")
	s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
	alice := f.user(a.ID, "alice@example.com")
	bob := f.user(a.ID, "bob@example.com")

	t.Run("saved once", func(t *testing.T) {
		t.Parallel()
		o := f.order(s, alice, 2, "once", domain.OrderConfirmed, f.now)
		f.save(o, true)
		checkOrder(t, f.readOrder(o), o)
		// The same order again, even with other values, changes nothing.
		f.save(o, false)
		changed := o
		changed.Quantity, changed.AmountCents = 1, 1999
		f.save(changed, false)
		checkOrder(t, f.readOrder(o), o)
		// A failure never replaces a confirmation.
		failed := o
		failed.Status, failed.ConfirmedAt = domain.OrderFailed, nil
		f.save(failed, false)
		checkOrder(t, f.readOrder(o), o)
	})

	t.Run("a confirmation replaces a failure", func(t *testing.T) {
		t.Parallel()
		failed := f.order(s, alice, 1, "retried", domain.OrderFailed, f.now)
		f.save(failed, true)
		checkOrder(t, f.readOrder(failed), failed)
		f.save(failed, false) // a failure twice: no-op

		confirmed := f.order(s, alice, 1, "retried", domain.OrderConfirmed, f.now)
		confirmed.ID = failed.ID
		created, err := f.st.SaveOrder(f.ctx, confirmed)
		if err != nil {
			t.Fatalf("SaveOrder(confirmation): %v", err)
		}
		if created {
			t.Fatalf("replacing a failed order reported created=true; the row existed")
		}
		checkOrder(t, f.readOrder(failed), confirmed)
		f.save(confirmed, false)
	})

	t.Run("idempotency key of another order", func(t *testing.T) {
		t.Parallel()
		first := f.order(s, bob, 1, "shared-key", domain.OrderConfirmed, f.now)
		f.save(first, true)
		second := f.order(s, bob, 2, "shared-key", domain.OrderConfirmed, f.now.Add(time.Second))
		created, err := f.st.SaveOrder(f.ctx, second)
		if !errors.Is(err, domain.ErrPermanent) || created {
			t.Fatalf("SaveOrder(key taken) = %v, %v, want ErrPermanent", created, err)
		}
		checkOrder(t, f.readOrder(first), first)
		if _, err := f.st.Order(f.ctx, a.ID, second.ID); !errors.Is(err, domain.ErrOrderNotFound) {
			t.Fatalf("refused order was stored: %v", err)
		}
		// The same key for another user is fine.
		f.save(f.order(s, alice, 1, "shared-key", domain.OrderConfirmed, f.now), true)
	})

	for name, mutate := range map[string]func(o *domain.Order){
		"unknown sale":   func(o *domain.Order) { o.SaleID = uuid.New() },
		"unknown user":   func(o *domain.Order) { o.UserID = uuid.New() },
		"unknown tenant": func(o *domain.Order) { o.TenantID = uuid.New() },
		"no quantity":    func(o *domain.Order) { o.Quantity = 0 },
		"bad status":     func(o *domain.Order) { o.Status = domain.OrderPending },
	} {
		t.Run("permanent: "+name, func(t *testing.T) {
			t.Parallel()
			o := f.order(s, alice, 1, "perm-"+name, domain.OrderConfirmed, f.now)
			mutate(&o)
			created, err := f.st.SaveOrder(f.ctx, o)
			if !errors.Is(err, domain.ErrPermanent) || created {
				t.Fatalf("SaveOrder = %v, %v, want an error wrapping ErrPermanent", created, err)
			}
		})
	}

	t.Run("order is tenant scoped", func(t *testing.T) {
		t.Parallel()
		o := f.order(s, alice, 1, "scoped", domain.OrderConfirmed, f.now)
		f.save(o, true)
		if _, err := f.st.Order(f.ctx, b.ID, o.ID); !errors.Is(err, domain.ErrOrderNotFound) {
			t.Fatalf("Order(other tenant) = %v, want ErrOrderNotFound", err)
		}
		if _, err := f.st.Order(f.ctx, a.ID, uuid.New()); !errors.Is(err, domain.ErrOrderNotFound) {
			t.Fatalf("Order(unknown) = %v, want ErrOrderNotFound", err)
		}
	})
}

func TestListOrdersKeysetPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.tenant("tenant-a")
	s := f.sale(a.ID, "drop", -time.Hour, 2*time.Hour, 0)
	s2 := f.sale(a.ID, "drop-2", -time.Hour, 2*time.Hour, 0)
	alice := f.user(a.ID, "alice@example.com")
	bob := f.user(a.ID, "bob@example.com")

	// 25 orders; every three share a created_at, so the id has to break the ties.
	var want []domain.Order
	for i := range 25 {
		sale, status := s, domain.OrderConfirmed
		if i%4 == 0 {
			sale, status = s2, domain.OrderFailed
		}
		o := f.order(sale, alice, 1, fmt.Sprintf("k%d", i), status, f.now.Add(time.Duration(i/3)*time.Second))
		f.save(o, true)
		want = append(want, o)
		// Bob's orders, at the same instants, never show up in Alice's pages.
		f.save(f.order(sale, bob, 1, fmt.Sprintf("k%d", i), status, o.CreatedAt), true)
	}
	sort.Slice(want, func(i, j int) bool {
		if !want[i].CreatedAt.Equal(want[j].CreatedAt) {
			return want[i].CreatedAt.After(want[j].CreatedAt)
		}
		return bytes.Compare(want[i].ID[:], want[j].ID[:]) > 0
	})

	for _, size := range []int{10, 3, 1, 25, 100} {
		t.Run(fmt.Sprintf("page size %d", size), func(t *testing.T) {
			t.Parallel()
			var got []domain.Order
			var after *ports.OrderCursor
			for pages := 0; ; pages++ {
				if pages > 30 {
					t.Fatal("pagination does not end")
				}
				page, err := f.st.ListOrders(f.ctx, a.ID, alice.ID, after, size)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > size {
					t.Fatalf("page of %d, limit %d", len(page), size)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				last := page[len(page)-1]
				after = &ports.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			if len(got) != len(want) {
				t.Fatalf("paged through %d orders, want %d", len(got), len(want))
			}
			for i := range want {
				checkOrder(t, got[i], want[i])
			}
		})
	}

	t.Run("first page of 10", func(t *testing.T) {
		t.Parallel()
		page, err := f.st.ListOrders(f.ctx, a.ID, alice.ID, nil, 10)
		if err != nil || len(page) != 10 {
			t.Fatalf("first page = %d orders, %v", len(page), err)
		}
		for i := range page {
			if page[i].ID != want[i].ID {
				t.Fatalf("order %d = %s, want %s", i, page[i].ID, want[i].ID)
			}
		}
	})
	t.Run("other tenant sees nothing", func(t *testing.T) {
		t.Parallel()
		page, err := f.st.ListOrders(f.ctx, uuid.New(), alice.ID, nil, 100)
		if err != nil || len(page) != 0 {
			t.Fatalf("other tenant's page = %d orders, %v", len(page), err)
		}
	})
}

func TestConfirmedOrderIDsAndSoldUnits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.tenant("tenant-a")
	s1 := f.sale(a.ID, "one", -time.Hour, 2*time.Hour, 0)
	s2 := f.sale(a.ID, "two", -time.Hour, 2*time.Hour, 0)
	alice := f.user(a.ID, "alice@example.com")

	c1 := f.order(s1, alice, 2, "c1", domain.OrderConfirmed, f.now)
	c2 := f.order(s1, alice, 3, "c2", domain.OrderConfirmed, f.now)
	failed := f.order(s1, alice, 4, "f1", domain.OrderFailed, f.now)
	other := f.order(s2, alice, 5, "c3", domain.OrderConfirmed, f.now)
	for _, o := range []domain.Order{c1, c2, failed, other} {
		f.save(o, true)
	}

	unknown := uuid.New()
	got, err := f.st.ConfirmedOrderIDs(f.ctx, a.ID, []uuid.UUID{c1.ID, failed.ID, unknown, c2.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uuid.UUID]bool{c1.ID: true, c2.ID: true}; fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 2 {
		t.Fatalf("ConfirmedOrderIDs = %v, want %v", got, want)
	}
	if got, err := f.st.ConfirmedOrderIDs(f.ctx, a.ID, nil); err != nil || len(got) != 0 {
		t.Fatalf("ConfirmedOrderIDs(nil) = %v, %v", got, err)
	}

	sold := func(id uuid.UUID) int {
		t.Helper()
		n, err := f.st.SoldUnits(f.ctx, a.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := sold(s1.ID); n != 5 {
		t.Fatalf("SoldUnits(s1) = %d, want 5 (failed orders do not count)", n)
	}
	if n := sold(s2.ID); n != 5 {
		t.Fatalf("SoldUnits(s2) = %d, want 5", n)
	}
	if n := sold(uuid.New()); n != 0 {
		t.Fatalf("SoldUnits(unknown) = %d, want 0", n)
	}
	// The failed order confirmed after all counts from then on.
	confirmed := failed
	confirmed.Status = domain.OrderConfirmed
	confirmed.ConfirmedAt = &f.now
	f.save(confirmed, false)
	if n := sold(s1.ID); n != 9 {
		t.Fatalf("SoldUnits(s1) after confirmation = %d, want 9", n)
	}
	if got, err := f.st.ConfirmedOrderIDs(f.ctx, a.ID, []uuid.UUID{failed.ID}); err != nil || !got[failed.ID] {
		t.Fatalf("ConfirmedOrderIDs after confirmation = %v, %v", got, err)
	}
	// Both are tenant-scoped: another tenant sees nothing of tenant A's orders.
	b := f.tenant("tenant-b")
	if got, err := f.st.ConfirmedOrderIDs(f.ctx, b.ID, []uuid.UUID{c1.ID, c2.ID}); err != nil || len(got) != 0 {
		t.Fatalf("ConfirmedOrderIDs from another tenant = %v, %v", got, err)
	}
	if n, err := f.st.SoldUnits(f.ctx, b.ID, s1.ID); err != nil || n != 0 {
		t.Fatalf("SoldUnits from another tenant = %d, %v", n, err)
	}
}

func TestLiveSalesAndCloseSales(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.tenant("tenant-a"), f.tenant("tenant-b")
	h := time.Hour
	now := f.now

	open := f.sale(a.ID, "open", -h, 2*h, 0)
	upcoming := f.sale(a.ID, "upcoming", h, h, 0)
	openB := f.sale(b.ID, "open-b", -h, 2*h, 0)
	closedRecent := f.sale(a.ID, "closed-recent", -2*h, 90*time.Minute, 0) // ended 30 min ago
	closedOld := f.sale(a.ID, "closed-old", -73*h, h, 0)                   // ended 3 days ago
	closedOldB := f.sale(b.ID, "closed-old-b", -73*h, h, 0)

	closeSales := func(cutoff time.Time, want int64) {
		t.Helper()
		n, err := f.st.CloseSales(f.ctx, cutoff)
		if err != nil || n != want {
			t.Fatalf("CloseSales(%v) = %d, %v, want %d", cutoff.Sub(now), n, err, want)
		}
	}
	live := func(since time.Time, want ...domain.Sale) {
		t.Helper()
		refs, err := f.st.LiveSales(f.ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]uuid.UUID, len(refs))
		for i, r := range refs {
			got[i] = r.SaleID
			tenant := map[uuid.UUID]uuid.UUID{openB.ID: b.ID, closedOldB.ID: b.ID}[r.SaleID]
			if tenant == uuid.Nil {
				tenant = a.ID
			}
			if r.TenantID != tenant {
				t.Errorf("LiveSales: sale %s with tenant %s, want %s", r.SaleID, r.TenantID, tenant)
			}
		}
		if !sameIDs(got, saleIDs(want)) {
			t.Fatalf("LiveSales(since %v) = %v, want %v", since.Sub(now), got, names(want))
		}
	}
	tenantLive := func(tenant uuid.UUID, since time.Time, want ...domain.Sale) {
		t.Helper()
		got, err := f.st.TenantLiveSaleIDs(f.ctx, tenant, since)
		if err != nil {
			t.Fatal(err)
		}
		if !sameIDs(got, saleIDs(want)) {
			t.Fatalf("TenantLiveSaleIDs(since %v) = %v, want %v", since.Sub(now), got, names(want))
		}
	}

	// The three ended sales are closed; open and upcoming ones are not, and closing is idempotent.
	closeSales(now, 3)
	closeSales(now, 0)

	// Ended but not closed yet, so still live whatever since says.
	endedOpen := f.sale(a.ID, "ended-open", -3*h, h, 0) // ended 2h ago
	endedJust := f.sale(a.ID, "ended-just", -h, 50*time.Minute, 0)

	live(now.Add(-24*h), open, upcoming, openB, closedRecent, endedOpen, endedJust)
	live(now.Add(-20*time.Minute), open, upcoming, openB, endedOpen, endedJust)
	tenantLive(a.ID, now.Add(-24*h), open, upcoming, closedRecent, endedOpen, endedJust)
	tenantLive(a.ID, now.Add(-20*time.Minute), open, upcoming, endedOpen, endedJust)
	tenantLive(b.ID, now.Add(-24*h), openB)
	tenantLive(b.ID, now.Add(-100*h), openB, closedOldB)
	tenantLive(uuid.New(), now.Add(-100*h))

	// Only sales ended before the cutoff are closed.
	closeSales(now.Add(-h), 1) // ended-open
	live(now.Add(-20*time.Minute), open, upcoming, openB, endedJust)
	closeSales(now, 1) // ended-just
	// Closed, but ended (10 min ago) after since: it may still hold reservations.
	live(now.Add(-20*time.Minute), open, upcoming, openB, endedJust)
	live(now.Add(-5*time.Minute), open, upcoming, openB)
	live(now.Add(-100*h), open, upcoming, openB, closedRecent, closedOld, closedOldB, endedOpen, endedJust)

	// Closing never hides an unfinished sale from the active list, and extending a closed sale
	// reopens it.
	active, err := f.st.ListSales(f.ctx, a.ID, ports.SaleFilter{Limit: 10})
	if err != nil || !sameIDs(saleIDs(active), []uuid.UUID{open.ID, upcoming.ID}) {
		t.Fatalf("active = %v, %v", names(active), err)
	}
	if _, err := f.st.UpdateSale(f.ctx, a.ID, closedOld.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		cur.EndsAt = now.Add(h)
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	active, err = f.st.ListSales(f.ctx, a.ID, ports.SaleFilter{Limit: 10})
	if err != nil || !sameIDs(saleIDs(active), []uuid.UUID{open.ID, upcoming.ID, closedOld.ID}) {
		t.Fatalf("active after reopening = %v, %v", names(active), err)
	}
	live(now.Add(-5*time.Minute), open, upcoming, openB, closedOld)
	// Changing an ended sale without extending it leaves it closed.
	if _, err := f.st.UpdateSale(f.ctx, a.ID, closedRecent.ID, func(_ context.Context, cur domain.Sale) (domain.Sale, error) {
		cur.Name = "renamed"
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	live(now.Add(-5*time.Minute), open, upcoming, openB, closedOld)
}
