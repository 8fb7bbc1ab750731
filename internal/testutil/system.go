package testutil

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/adapters/dispatch"
	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/wiring"
)

// AdminPassword is the password of the bootstrap admin of test systems.
const AdminPassword = "test-admin-password"

// System is Flashsale running in-process on a fresh database and a private Redis prefix.
type System struct {
	URL    string
	Config config.Config
	App    *app.Application
	Store  *postgres.Store
	Pool   *pgxpool.Pool
	Redis  goredis.UniversalClient
	Tokens ports.TokenIssuer
	Tenant domain.Tenant
	// Broker is the embedded Kafka broker (Events only, unless ExternalBroker).
	Broker *kafka.Embedded
	// Dispatch is the purchase path's asynchronous queue.
	Dispatch *dispatch.Queue
	// AdminURL is the admin listener's base URL, when Configure set AdminAddr.
	AdminURL string
	fx       *fx.App
}

// SystemOptions choose the roles and adjust the configuration.
type SystemOptions struct {
	// NoWorker starts the API only; NoAPI the worker only.
	NoWorker, NoAPI bool
	// Events adds the event side: an embedded Kafka broker, the outbox relay and the three
	// consumer groups (mail goes to files in a temporary directory).
	Events bool
	// ExternalBroker: the event side uses the broker the configuration names (KAFKA_BROKERS,
	// or 127.0.0.1:KAFKA_EMBEDDED_PORT, e.g. a `flashsale broker` process) instead of starting one.
	ExternalBroker bool
	// DatabaseURL and Redis reuse another system's backends (a second node); empty means fresh.
	DatabaseURL string
	Redis       *Redis
	Configure   func(*config.Config)
	// Options are extra fx options, e.g. fx.Decorate to inject failures into a port.
	Options []fx.Option
}

// TestConfig is the configuration of test systems: fast hashing, fast retries, private keys.
func TestConfig(dbURL string, r Redis) config.Config {
	c := config.Defaults()
	c.AppEnv = "test"
	c.LogLevel = "warn"
	c.HTTPAddr = "127.0.0.1:0"
	c.DatabaseURL = dbURL
	if PoolerURL() != "" {
		c.DatabaseMigrateURL = DirectURL(dbURL)
	}
	if mode := QueryExecMode(); mode != "" {
		c.DBQueryExecMode = mode
	}
	c.RedisURL = RedisURL()
	c.RedisPrefix = r.Prefix
	c.OrderQueue = r.Queue
	c.SaleEventsQueue = r.Queue + "-sales"
	c.BcryptCost = 4
	c.AdminEmail = "admin@test.local"
	c.AdminPassword = AdminPassword
	c.WorkerRetryBase = 100 * time.Millisecond
	c.WorkerPollInterval = 20 * time.Millisecond
	c.ShutdownWait = 5 * time.Second
	c.ReconcileInterval = time.Hour // tests run passes themselves
	// Tests drive many requests from 127.0.0.1; the limit tests set their own.
	c.RateLimitPurchase, c.RateLimitAuth = 0, 0
	c.KafkaEmbeddedPort = 0 // a free port per system
	c.KafkaPartitions = 3
	c.RelayInterval = 50 * time.Millisecond
	c.ConsumerBackoff = 50 * time.Millisecond
	c.ConsumerMaxBackoff = 500 * time.Millisecond
	c.BreakerOpenFor = 500 * time.Millisecond
	c.KafkaDeliveryTimeout = 3 * time.Second
	c.InventoryCheck = time.Hour // tests run checks themselves
	return c
}

// StartSystem starts the system and stops it when t ends.
func StartSystem(t testing.TB, o SystemOptions) *System {
	t.Helper()
	dbURL := o.DatabaseURL
	if dbURL == "" {
		dbURL = NewDatabase(t)
	}
	var r Redis
	if o.Redis != nil {
		r = *o.Redis
	} else {
		r = NewRedis(t)
	}
	cfg := TestConfig(dbURL, r)
	cfg.MailDir = t.TempDir()
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("testutil: config: %v", err)
	}
	s := &System{Config: cfg}
	var httpServer *wiring.HTTPServer
	var admin *wiring.AdminServer
	opts := []fx.Option{
		wiring.Config(cfg),
		wiring.Backends,
		wiring.Migrate,
		wiring.Admin,
		fx.Populate(&s.App, &s.Store, &s.Pool, &s.Redis, &s.Tokens, &s.Dispatch, &admin),
	}
	if !o.NoAPI {
		opts = append(opts, wiring.API, fx.Populate(&httpServer))
	}
	if !o.NoWorker {
		opts = append(opts, wiring.Worker)
	}
	switch {
	case o.Events && o.ExternalBroker:
		opts = append(opts, wiring.Kafka, wiring.Relay, wiring.Consumers())
	case o.Events:
		opts = append(opts, wiring.EmbeddedBroker, wiring.Kafka, wiring.Relay, wiring.Consumers(), fx.Populate(&s.Broker))
	}
	opts = append(opts, o.Options...)
	s.fx = fx.New(opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.fx.Start(ctx); err != nil {
		t.Fatalf("testutil: start system: %v", err)
	}
	t.Cleanup(func() { s.Stop(t) })
	if httpServer != nil {
		s.URL = "http://" + httpServer.Addr().String()
	}
	if a := admin.Addr(); a != nil {
		s.AdminURL = "http://" + a.String()
	}
	tenant, err := s.Store.EnsureTenant(ctx, domain.DefaultTenantSlug, "Default merchant")
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	s.Tenant = tenant
	return s
}

// BrokerAddr is where the event side's Kafka broker listens.
func (s *System) BrokerAddr() string {
	if s.Broker != nil {
		return s.Broker.Addr()
	}
	return s.Config.Brokers()
}

// Stop stops the system gracefully (idempotent).
func (s *System) Stop(t testing.TB) {
	if s.fx == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.fx.Stop(ctx); err != nil {
		t.Logf("testutil: stop system: %v", err)
	}
	s.fx = nil
}

// TokenFor opens a session for an existing user without the cost of a password check and
// returns its access token.
func (s *System) TokenFor(t testing.TB, u domain.User) string {
	t.Helper()
	return s.SessionFor(t, u).AccessToken
}

// SessionFor opens a session for u and returns its token pair.
func (s *System) SessionFor(t testing.TB, u domain.User) app.TokenPair {
	t.Helper()
	pair, err := s.App.Sessions.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// CreateUsers inserts n users of role straight into the database (one shared password hash).
func (s *System) CreateUsers(t testing.TB, n int, role domain.Role) []domain.User {
	t.Helper()
	ctx := context.Background()
	users := make([]domain.User, n)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range users {
		u := domain.User{
			ID: newV7(), TenantID: s.Tenant.ID, Email: fmt.Sprintf("user%d-%s@test.local", i, randomHex(4)),
			PasswordHash: "$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinva", Role: role, CreatedAt: now,
		}
		if err := s.Store.CreateUser(ctx, u); err != nil {
			t.Fatalf("testutil: create user: %v", err)
		}
		users[i] = u
	}
	return users
}

// Admin is the bootstrap admin with a token.
func (s *System) Admin(t testing.TB) (domain.User, string) {
	t.Helper()
	u, err := s.Store.UserByEmail(context.Background(), s.Tenant.ID, s.Config.AdminEmail)
	if err != nil {
		t.Fatalf("testutil: bootstrap admin: %v", err)
	}
	return u, s.TokenFor(t, u)
}

// CreateSale creates a sale through the use-case as the admin.
func (s *System) CreateSale(t testing.TB, stock, perUserLimit int, startsIn, lasts time.Duration) app.SaleView {
	t.Helper()
	return s.CreateShardedSale(t, stock, perUserLimit, 1, startsIn, lasts)
}

// CreateShardedSale is CreateSale with the stock split into shards (domain.Sale.Shards).
func (s *System) CreateShardedSale(t testing.TB, stock, perUserLimit, shards int, startsIn, lasts time.Duration) app.SaleView {
	t.Helper()
	admin, _ := s.Admin(t)
	start := time.Now().Add(startsIn)
	v, err := s.App.CreateSale.Handle(context.Background(), app.CreateSale{
		Principal: domain.Principal{UserID: admin.ID, TenantID: admin.TenantID, Role: domain.RoleAdmin},
		Name:      "Test sale " + randomHex(3), PriceCents: 1999, Currency: "EUR",
		TotalStock: stock, PerUserLimit: perUserLimit, StartsAt: start, EndsAt: start.Add(lasts), Shards: shards,
	})
	if err != nil {
		t.Fatalf("testutil: create sale: %v", err)
	}
	return v
}

// WaitFor polls cond until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
