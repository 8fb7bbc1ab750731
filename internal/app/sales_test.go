package app_test

import (
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

func ptr[T any](v T) *T { return &v }

func TestCreateSale(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 13, 0, 0, 0, time.UTC) // an hour after the env's clock
	valid := func(e *env) app.CreateSale {
		return app.CreateSale{Principal: e.admin(), Name: "Drop", PriceCents: 500, Currency: "EUR",
			TotalStock: 100, PerUserLimit: 2, StartsAt: start, EndsAt: start.Add(time.Hour)}
	}
	cases := []struct {
		name   string
		modify func(e *env, c *app.CreateSale)
		want   error
	}{
		{"valid", func(*env, *app.CreateSale) {}, nil},
		{"ends when it starts", func(_ *env, c *app.CreateSale) { c.EndsAt = c.StartsAt }, domain.ErrInvalidSaleWindow},
		{"ends before it starts", func(_ *env, c *app.CreateSale) { c.EndsAt = c.StartsAt.Add(-time.Minute) }, domain.ErrInvalidSaleWindow},
		{"no stock", func(_ *env, c *app.CreateSale) { c.TotalStock = 0 }, domain.ErrInvalidRequest},
		{"shopper", func(e *env, c *app.CreateSale) { c.Principal = e.shopper() }, domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cmd := valid(e)
			tc.modify(e, &cmd)
			v, err := e.app.CreateSale.Handle(ctx, cmd)
			if tc.want != nil {
				wantErr(t, err, tc.want)
				if e.sales.count("CreateSale") != 0 || e.inv.count("SyncSale") != 0 {
					t.Error("a refused sale reached the repository or the inventory")
				}
				return
			}
			if err != nil {
				t.Fatalf("create sale: %v", err)
			}
			stored, ok := e.sales.get(v.Sale.ID)
			if !ok || !reflect.DeepEqual(stored, v.Sale) || stored.TenantID != cmd.Principal.TenantID {
				t.Errorf("stored sale = %+v (%v), want %+v in the admin's tenant", stored, ok, v.Sale)
			}
			if st, ok := e.inv.state(v.Sale.TenantID, v.Sale.ID); !ok || st.total != 100 || st.remaining != 100 || st.limit != 2 {
				t.Errorf("inventory = %+v, %v", st, ok)
			}
			if v.Status != domain.SaleScheduled || v.Inventory.Remaining != 100 {
				t.Errorf("view = %+v, want scheduled with 100 left", v)
			}
		})
	}
}

// Redis down at creation: the sale exists anyway and its stock is loaded on first use.
func TestCreateSaleSurvivesInventoryFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.inv.SyncErr = errBoom
	now := e.clock.Now()
	v, err := e.app.CreateSale.Handle(ctx, app.CreateSale{Principal: e.admin(), Name: "Drop", PriceCents: 500,
		Currency: "EUR", TotalStock: 3, PerUserLimit: 3, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("create sale: %v", err)
	}
	if _, ok := e.sales.get(v.Sale.ID); !ok {
		t.Fatal("sale not stored")
	}
	if v.Inventory.Total != 3 || v.Inventory.Remaining != 3 || v.Status != domain.SaleActive {
		t.Errorf("view = %+v, want the full stock, active", v)
	}
	if e.log.logged(slog.LevelWarn, "stock is not in the inventory store") != 1 {
		t.Error("inventory failure not logged")
	}

	// The open sale's inventory is loaded at the first purchase, fenced like a lost one (the
	// store cannot tell the two apart); once the fence is over the purchase goes through.
	e.inv.SyncErr = nil
	buy := app.PlaceOrder{Principal: e.shopper(), SaleID: v.Sale.ID, Quantity: 3, IdempotencyKey: "k"}
	_, err = e.app.PlaceOrder.Handle(ctx, buy)
	wantErr(t, err, domain.ErrUnavailable)
	e.clock.Advance(e.settings.RestoreFence)
	res, err := e.app.PlaceOrder.Handle(ctx, buy)
	if err != nil || res.Order.Status != domain.OrderPending {
		t.Fatalf("purchase = %+v, %v; want accepted once the inventory is loaded", res, err)
	}
}

func TestUpdateSaleStockBelowSoldRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 10)
	e.reserve(t, s, e.shopper(), 6) // sold in Redis, not durable yet
	e.cache.put(s)

	_, err := e.app.UpdateSale.Handle(ctx, app.UpdateSale{Principal: e.admin(), SaleID: s.ID,
		Patch: domain.SalePatch{Name: ptr("Renamed"), TotalStock: ptr(5)}})
	wantErr(t, err, domain.ErrStockBelowSold)

	if got, _ := e.sales.get(s.ID); !reflect.DeepEqual(got, s) {
		t.Errorf("repository sale = %+v, want it unchanged %+v", got, s)
	}
	st, _ := e.inv.state(s.TenantID, s.ID)
	if st.total != 10 || st.remaining != 4 || st.sold != 6 {
		t.Errorf("inventory total %d remaining %d sold %d, want 10 4 6", st.total, st.remaining, st.sold)
	}
	if e.cache.count("ReplaceSale") != 0 {
		t.Error("cache replaced after a failed update")
	}
	if c, _ := e.cache.get(s.TenantID, s.ID); c.Name != s.Name {
		t.Errorf("cached name %q, want %q", c.Name, s.Name)
	}
}

func TestUpdateSaleReplacesCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 2)
	e.reserve(t, s, e.shopper(), 2)
	e.cache.put(s)
	e.clock.Advance(time.Minute)

	v, err := e.app.UpdateSale.Handle(ctx, app.UpdateSale{Principal: e.admin(), SaleID: s.ID,
		Patch: domain.SalePatch{Name: ptr("Bigger drop"), TotalStock: ptr(20), PerUserLimit: ptr(4)}})
	if err != nil {
		t.Fatalf("update sale: %v", err)
	}
	if v.Sale.Name != "Bigger drop" || v.Sale.TotalStock != 20 || !v.Sale.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("view sale = %+v", v.Sale)
	}
	if v.Inventory.Total != 20 || v.Inventory.Remaining != 18 || v.Inventory.Sold != 2 || v.Status != domain.SaleActive {
		t.Errorf("view inventory = %+v status %s, want 20/18/2 active", v.Inventory, v.Status)
	}
	if got, _ := e.sales.get(s.ID); !reflect.DeepEqual(got, v.Sale) {
		t.Errorf("repository = %+v, want %+v", got, v.Sale)
	}
	if got, _ := e.cache.get(s.TenantID, s.ID); !reflect.DeepEqual(got, v.Sale) {
		t.Errorf("cache = %+v, want the updated sale", got)
	}
	if st, _ := e.inv.state(s.TenantID, s.ID); st.limit != 4 {
		t.Errorf("inventory limit %d, want 4", st.limit)
	}
}

// PostgreSQL fails to commit after Redis took the change: Redis is put back.
func TestUpdateSaleCompensatesInventory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.activeSale(t, 10, 2)
	e.reserve(t, s, e.shopper(), 1)
	e.cache.put(s)
	e.sales.CommitErr = errors.New("could not serialize access")

	_, err := e.app.UpdateSale.Handle(ctx, app.UpdateSale{Principal: e.admin(), SaleID: s.ID,
		Patch: domain.SalePatch{TotalStock: ptr(50), PerUserLimit: ptr(9), EndsAt: ptr(s.EndsAt.Add(time.Hour)), PriceCents: ptr(int64(1))}})
	wantErr(t, err, e.sales.CommitErr)

	if n := e.inv.count("SyncSale"); n != 2 {
		t.Errorf("SyncSale called %d times, want 2 (change and compensation)", n)
	}
	st, _ := e.inv.state(s.TenantID, s.ID)
	if st.total != 10 || st.remaining != 9 || st.sold != 1 || st.limit != 2 || !st.ends.Equal(s.EndsAt) || st.price != s.PriceCents {
		t.Errorf("inventory = total %d remaining %d sold %d limit %d ends %v price %d; want the previous sale",
			st.total, st.remaining, st.sold, st.limit, st.ends, st.price)
	}
	if got, _ := e.sales.get(s.ID); !reflect.DeepEqual(got, s) {
		t.Errorf("repository sale changed: %+v", got)
	}
	if e.cache.count("ReplaceSale") != 0 {
		t.Error("cache replaced after a failed update")
	}
}

func TestUpdateSaleRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		who   func(e *env) domain.Principal
		patch domain.SalePatch
		want  error
	}{
		{"shopper", (*env).shopper, domain.SalePatch{Name: ptr("x")}, domain.ErrForbidden},
		{"admin of another tenant", func(e *env) domain.Principal {
			return e.adminOf(e.tenants.ensure("other", "Other").ID)
		}, domain.SalePatch{Name: ptr("x")}, domain.ErrSaleNotFound},
		{"window inverted", (*env).admin, domain.SalePatch{EndsAt: ptr(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))}, domain.ErrInvalidSaleWindow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.activeSale(t, 10, 2)
			_, err := e.app.UpdateSale.Handle(ctx, app.UpdateSale{Principal: tc.who(e), SaleID: s.ID, Patch: tc.patch})
			wantErr(t, err, tc.want)
			if got, _ := e.sales.get(s.ID); !reflect.DeepEqual(got, s) {
				t.Errorf("sale changed: %+v", got)
			}
			if e.inv.count("SyncSale") != 0 {
				t.Error("inventory synced for a refused update")
			}
		})
	}
}

// Reading a sale Redis does not know restores its inventory from the durable orders.
func TestGetSaleRestoresInventory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.newSale(10, 2, -time.Hour, time.Hour)
	e.durable(s, e.shopper(), 2, "a")
	e.durable(s, e.shopper(), 2, "b")

	v, err := e.app.GetSale.Handle(ctx, s.TenantID, s.ID)
	if err != nil {
		t.Fatalf("get sale: %v", err)
	}
	if v.Inventory.Remaining != 6 || v.Inventory.Sold != 4 || v.Status != domain.SaleActive {
		t.Errorf("view = %+v", v)
	}
	if _, ok := e.cache.get(s.TenantID, s.ID); !ok {
		t.Error("sale not cached after a miss")
	}
	_, err = e.app.GetSale.Handle(ctx, e.tenants.ensure("other", "Other").ID, s.ID)
	wantErr(t, err, domain.ErrSaleNotFound)
}
