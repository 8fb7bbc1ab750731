package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports/storetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

func TestPermanentIsOnlyRefusedData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "23505"}, true}, // unique violation
		{&pgconn.PgError{Code: "23503"}, true}, // foreign key violation
		{&pgconn.PgError{Code: "23514"}, true}, // check violation
		{&pgconn.PgError{Code: "23502"}, true}, // not null violation
		{&pgconn.PgError{Code: "22021"}, true}, // character not in repertoire (NUL)
		{&pgconn.PgError{Code: "22003"}, true}, // numeric value out of range
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "23505"}), true},
		{&pgconn.PgError{Code: "25006"}, false}, // read-only transaction
		{&pgconn.PgError{Code: "53300"}, false}, // too many connections
		{&pgconn.PgError{Code: "57P01"}, false}, // admin shutdown (terminated backend)
		{&pgconn.PgError{Code: "57P03"}, false}, // cannot connect now (starting up)
		{&pgconn.PgError{Code: "40001"}, false}, // serialization failure
		{&pgconn.PgError{Code: "40P01"}, false}, // deadlock
		{&pgconn.PgError{Code: "08006"}, false}, // connection failure
		{&pgconn.PgError{Code: ""}, false},
		{errors.New("unexpected EOF"), false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{nil, false},
	} {
		if got := postgres.Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// writePath is one write of the store, on data a healthy store prepared; it is run once under a
// fault, and once again when the fault is over.
type writePath struct {
	name  string
	write func(ctx context.Context, st *postgres.Store, inv *postgres.Inventory) error
}

// writePaths prepares, through the healthy store, one case of every write the PostgreSQL
// adapter makes: orders, failures, the outbox, the consumers' effects, sales, users, tenants,
// and the row-locking inventory.
func writePaths(t *testing.T, w *pgWorld) []writePath {
	tenantID := w.Sale.TenantID
	confirmed := w.Unsaved(1, w.Now)
	failed := w.Order(w.Sale, w.Buyer, 1, uuid.NewString(), domain.OrderFailed, w.Now)
	w.Confirmed(1, w.Now) // a pending outbox row for the relay
	statsEvent, counterEvent := storetest.EventOf(t, w.Unsaved(1, w.Now)), storetest.EventOf(t, w.Unsaved(2, w.Now))
	processed := uuid.New()
	newSale := w.Sale
	newSale.ID, newSale.Name = uuid.New(), "new drop"
	newUser := w.NewUser(tenantID, "new-"+uuid.NewString()[:8]+"@example.com")
	inv := postgres.NewInventory(w.st.Pool())
	if _, err := inv.SyncSale(w.Ctx, w.Sale, 0); err != nil {
		t.Fatalf("SyncSale: %v", err)
	}
	reservation := func() domain.Reservation {
		return domain.Reservation{OrderID: uuid.New(), TenantID: tenantID, SaleID: w.Sale.ID, UserID: w.Buyer.ID,
			Quantity: 1, IdempotencyKey: uuid.NewString(), UnitPriceCents: w.Sale.PriceCents, Currency: w.Sale.Currency,
			CreatedAt: w.Now}
	}
	toReserve := reservation()
	reserved, err := inv.Reserve(w.Ctx, reservation())
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	toRelease := reserved.Reservation

	return []writePath{
		{"save a confirmed order", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.SaveOrder(ctx, confirmed, storetest.ConfirmedEvent(confirmed))
			return err
		}},
		{"save a failed order", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.SaveOrder(ctx, failed)
			return err
		}},
		{"relay the outbox", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.RelayPending(ctx, 10, func(context.Context, []domain.Event) error { return nil })
			return err
		}},
		{"add an order to the stats", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.AddOrderToStats(ctx, "analytics", statsEvent)
			return err
		}},
		{"add sold units", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.AddSoldUnits(ctx, "inventory-sync", counterEvent)
			return err
		}},
		{"mark an event processed", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			return st.MarkEventProcessed(ctx, "email", processed)
		}},
		{"record drift", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			return st.RecordDrift(ctx, tenantID, w.Sale.ID, 1)
		}},
		{"create a sale", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			return st.CreateSale(ctx, newSale)
		}},
		{"update a sale", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.UpdateSale(ctx, tenantID, w.Sale.ID, func(_ context.Context, s domain.Sale) (domain.Sale, error) {
				s.Name = "renamed"
				return s, nil
			})
			return err
		}},
		{"close sales", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.CloseSales(ctx, w.Now.Add(-24*time.Hour))
			return err
		}},
		{"create a user", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			return st.CreateUser(ctx, newUser)
		}},
		{"ensure a tenant", func(ctx context.Context, st *postgres.Store, _ *postgres.Inventory) error {
			_, err := st.EnsureTenant(ctx, "tenant-"+processed.String()[:8], "New tenant")
			return err
		}},
		{"baseline inventory: sync a sale", func(ctx context.Context, _ *postgres.Store, inv *postgres.Inventory) error {
			_, err := inv.SyncSale(ctx, w.Sale, 0)
			return err
		}},
		{"baseline inventory: reserve", func(ctx context.Context, _ *postgres.Store, inv *postgres.Inventory) error {
			_, err := inv.Reserve(ctx, toReserve)
			return err
		}},
		{"baseline inventory: release", func(ctx context.Context, _ *postgres.Store, inv *postgres.Inventory) error {
			_, err := inv.Release(ctx, toRelease)
			return err
		}},
		{"baseline inventory: confirm", func(ctx context.Context, _ *postgres.Store, inv *postgres.Inventory) error {
			return inv.MarkConfirmed(ctx, toRelease)
		}},
	}
}

// dbFault breaks the database under a store of one connection, and mends it.
type dbFault struct {
	name string
	// params are added to the faulty store's connection URL.
	params url.Values
	// inject runs right before the write; it returns the context the write runs in.
	inject func(t *testing.T, pool *pgxpool.Pool, proxy *testutil.Proxy) context.Context
	// mend ends the fault; healthy is true if the faulty store itself is whole again.
	mend func(proxy *testutil.Proxy) (healthy bool)
	// notPooled, if set, says why the fault cannot be had through a pooler (testutil.PoolerURL).
	notPooled string
}

var dbFaults = []dbFault{
	{
		name: "database stopped (connection refused)",
		inject: func(_ *testing.T, _ *pgxpool.Pool, proxy *testutil.Proxy) context.Context {
			proxy.Stop()
			return context.Background()
		},
		mend: func(proxy *testutil.Proxy) bool { proxy.Start(); return true },
	},
	{
		name: "connection reset under the client",
		inject: func(_ *testing.T, _ *pgxpool.Pool, proxy *testutil.Proxy) context.Context {
			proxy.Cut()
			return context.Background()
		},
		mend: func(*testutil.Proxy) bool { return true },
	},
	{
		name: "backend terminated by the server (57P01)",
		inject: func(t *testing.T, pool *pgxpool.Pool, _ *testutil.Proxy) context.Context {
			terminateBackends(t, pool)
			return context.Background()
		},
		mend: func(*testutil.Proxy) bool { return true },
		notPooled: "a pgBouncer in transaction mode hides a server connection that died between transactions " +
			"(the next one gets another), and its backend pid is not the server's",
	},
	{
		name:      "read-only database (25006)",
		params:    url.Values{"default_transaction_read_only": {"on"}},
		inject:    func(*testing.T, *pgxpool.Pool, *testutil.Proxy) context.Context { return context.Background() },
		mend:      func(*testutil.Proxy) bool { return false },
		notPooled: "pgBouncer refuses startup parameters it does not track (default_transaction_read_only)",
	},
	{
		name: "deadline exceeded",
		inject: func(t *testing.T, _ *pgxpool.Pool, _ *testutil.Proxy) context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx
		},
		mend: func(*testutil.Proxy) bool { return true },
	},
}

// TestWritesUnderDatabaseFaultsAreTransient: under every fault, every write path answers an
// error (never success: nothing was written) that does not wrap domain.ErrPermanent (so the
// caller retries, never dead-letters), and the same write succeeds once the fault is over.
func TestWritesUnderDatabaseFaultsAreTransient(t *testing.T) {
	t.Parallel()
	for _, fault := range dbFaults {
		t.Run(fault.name, func(t *testing.T) {
			if testutil.PoolerURL() != "" && fault.notPooled != "" {
				t.Skip(fault.notPooled)
			}
			t.Parallel()
			pool, dbURL := testutil.NewPool(t, 4)
			healthy := postgres.NewStore(pool)
			w := &pgWorld{World: storetest.NewWorld(t, healthy), st: healthy}

			for _, path := range writePaths(t, w) {
				u, err := url.Parse(dbURL)
				if err != nil {
					t.Fatal(err)
				}
				proxy := testutil.NewProxy(t, u.Host)
				u.Host = proxy.Addr()
				q := u.Query()
				for k, v := range fault.params {
					q[k] = v
				}
				u.RawQuery = q.Encode()
				faulty := openOneConn(t, u.String())
				st, inv := postgres.NewStore(faulty), postgres.NewInventory(faulty)

				ctx := fault.inject(t, faulty, proxy)
				err = path.write(ctx, st, inv)
				if err == nil {
					t.Errorf("%s: succeeded under the fault", path.name)
				} else if errors.Is(err, domain.ErrPermanent) {
					t.Errorf("%s: %v: classified permanent, want transient", path.name, err)
				}

				if !fault.mend(proxy) {
					st, inv = healthy, postgres.NewInventory(pool)
				}
				if err := path.write(context.Background(), st, inv); err != nil {
					t.Errorf("%s: after the fault: %v", path.name, err)
				}
			}
		})
	}
}

// openOneConn opens a pool of one open connection on url that is handed out unchecked (by
// default a pool pings a connection idle for over a second first, which would hide a cut one).
func openOneConn(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := postgres.PoolConfig(url, postgres.PoolOptions{MaxConns: 1, QueryExecMode: testutil.QueryExecMode()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return pool
}

// terminateBackends has the server terminate the pool's connection and waits until it is gone.
func terminateBackends(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var pid uint32
	c, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid = c.Conn().PgConn().PID()
	c.Release()
	admin, err := pgxpool.New(ctx, testutil.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var alive bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", int32(pid)).Scan(&alive); err != nil {
			t.Fatal(err)
		}
		if !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still alive after pg_terminate_backend", pid)
		}
	}
}
