// Package storetest is the contract of the ports PostgreSQL's Store implements: TenantRepository,
// UserRepository, SaleRepository, OrderRepository and the Outbox its orders write, and the
// consumers' ProcessedEvents, SaleStatsRepository and SaleCounterRepository. Every
// implementation runs it (PostgreSQL, a fresh database per case; the in-memory store), through
// the ports only, so what it checks is what the use cases may rely on.
//
// One package for the eight ports: an order needs a tenant, a sale and a buyer, only SaveOrder
// writes the outbox, and the consumers' records need a sale, so the cases share one set-up
// (Fixture, World), which the adapters' own tests of what the ports cannot see use too.
package storetest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Store is every port the suite holds to the contract, on one set of data.
type Store interface {
	ports.TenantRepository
	ports.UserRepository
	ports.SaleRepository
	ports.OrderRepository
	ports.Outbox
	ports.ProcessedEvents
	ports.SaleStatsRepository
	ports.SaleCounterRepository
}

type testCase struct {
	name string
	run  func(t *testing.T, f *Fixture)
}

// Run runs the contract against the stores newStore returns. Every case has a store of its own
// (the outbox is one queue for all tenants), and the cases run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Tenants", tenantCases},
		{"Users", userCases},
		{"Sales", saleCases},
		{"Orders", orderCases},
		{"OrderEvents", orderEventCases},
		{"Outbox", outboxCases},
		{"Consumers", consumerCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, NewFixture(t, newStore(t)))
				})
			}
		})
	}
}

// Fixture makes one test's data through the ports.
type Fixture struct {
	T   *testing.T
	Ctx context.Context
	St  Store
	// Now is when the fixture was made, as PostgreSQL keeps times: UTC, to the microsecond.
	Now time.Time
}

// NewFixture is a fixture on st.
func NewFixture(t *testing.T, st Store) *Fixture {
	return &Fixture{T: t, Ctx: context.Background(), St: st, Now: time.Now().UTC().Truncate(time.Microsecond)}
}

// Tenant ensures the tenant with slug.
func (f *Fixture) Tenant(slug string) domain.Tenant {
	f.T.Helper()
	tn, err := f.St.EnsureTenant(f.Ctx, slug, "Tenant "+slug)
	if err != nil {
		f.T.Fatalf("EnsureTenant(%s): %v", slug, err)
	}
	return tn
}

// NewUser is a shopper of the tenant, not stored.
func (f *Fixture) NewUser(tenantID uuid.UUID, email string) domain.User {
	return domain.User{
		ID: uuid.New(), TenantID: tenantID, Email: email, PasswordHash: "hash-of-" + email,
		Role: domain.RoleShopper, CreatedAt: f.Now,
	}
}

// User stores a shopper of the tenant.
func (f *Fixture) User(tenantID uuid.UUID, email string) domain.User {
	f.T.Helper()
	u := f.NewUser(tenantID, email)
	if err := f.St.CreateUser(f.Ctx, u); err != nil {
		f.T.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// Sale stores a sale of the tenant running from now+startsIn for lasts, created at now+created.
func (f *Fixture) Sale(tenantID uuid.UUID, name string, startsIn, lasts, created time.Duration) domain.Sale {
	f.T.Helper()
	s := domain.Sale{
		ID: uuid.New(), TenantID: tenantID, Name: name, PriceCents: 1999, Currency: "EUR",
		TotalStock: 100, PerUserLimit: 2, Shards: 1, StartsAt: f.Now.Add(startsIn), EndsAt: f.Now.Add(startsIn + lasts),
		CreatedAt: f.Now.Add(created), UpdatedAt: f.Now.Add(created),
	}
	if err := f.St.CreateSale(f.Ctx, s); err != nil {
		f.T.Fatalf("CreateSale(%s): %v", name, err)
	}
	return s
}

// Order is an order of qty units of s by u, not stored; a confirmed one is confirmed a second
// after it was created.
func (f *Fixture) Order(s domain.Sale, u domain.User, qty int, key string, status domain.OrderStatus, created time.Time) domain.Order {
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

// Save saves o with events and checks what it reports.
func (f *Fixture) Save(o domain.Order, wantCreated bool, events ...domain.Event) {
	f.T.Helper()
	created, err := f.St.SaveOrder(f.Ctx, o, events...)
	if err != nil {
		f.T.Fatalf("SaveOrder(%s): %v", o.ID, err)
	}
	if created != wantCreated {
		f.T.Fatalf("SaveOrder(%s) created = %v, want %v", o.ID, created, wantCreated)
	}
}

// ReadOrder reads o back.
func (f *Fixture) ReadOrder(o domain.Order) domain.Order {
	f.T.Helper()
	got, err := f.St.Order(f.Ctx, o.TenantID, o.ID)
	if err != nil {
		f.T.Fatalf("Order(%s): %v", o.ID, err)
	}
	return got
}

// World is a tenant ("shop") with a sale running for an hour more and a buyer.
type World struct {
	*Fixture
	Sale  domain.Sale
	Buyer domain.User
}

// NewWorld makes a world on st.
func NewWorld(t *testing.T, st Store) *World {
	t.Helper()
	return NewFixture(t, st).World()
}

// World makes a world on the fixture's store.
func (f *Fixture) World() *World {
	f.T.Helper()
	tn := f.Tenant("shop")
	return &World{Fixture: f, Sale: f.Sale(tn.ID, "drop", -time.Hour, 2*time.Hour, 0), Buyer: f.User(tn.ID, "buyer@example.com")}
}

// Unsaved is a confirmed order of the world's sale by its buyer, with a key of its own, not
// stored.
func (w *World) Unsaved(qty int, created time.Time) domain.Order {
	return w.Order(w.Sale, w.Buyer, qty, uuid.NewString(), domain.OrderConfirmed, created)
}

// Confirmed stores a confirmed order created at created (confirmed a second later) with its
// order.confirmed event.
func (w *World) Confirmed(qty int, created time.Time) domain.Order {
	w.T.Helper()
	o := w.Unsaved(qty, created)
	w.Save(o, true, ConfirmedEvent(o))
	return o
}

// ConfirmedEvent is the event the write-order use case saves with a confirmed order.
func ConfirmedEvent(o domain.Order) domain.Event {
	return domain.OrderConfirmedEvent(o, *o.ConfirmedAt)
}

// EventOf is the decoded order.confirmed event of o, as the consumers receive it.
func EventOf(t *testing.T, o domain.Order) domain.OrderConfirmedV1 {
	t.Helper()
	e, err := domain.DecodeOrderConfirmed(ConfirmedEvent(o).Payload)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// CheckOrder compares orders field by field (ConfirmedAt by value).
func CheckOrder(t *testing.T, got, want domain.Order) {
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

func names(sales []domain.Sale) []string {
	out := make([]string, len(sales))
	for i, s := range sales {
		out[i] = s.Name
	}
	return out
}
