// Package config reads Flashsale's typed configuration from the environment, with defaults that
// work for a local run and checks that refuse unsafe production settings.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// DevJWTSecret and DevAdminPassword make a local run work with no setup; production refuses them.
//
//nolint:gosec // G101: deliberate, public development defaults that Validate refuses in production
const (
	DevJWTSecret     = "dev-only-secret-change-me-0123456789abcdef"
	DevAdminPassword = "admin-dev-password"
)

// Config is every setting, one environment variable each.
type Config struct {
	AppEnv    string `env:"APP_ENV" envDefault:"development" help:"development or production; production refuses dev secrets"`
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"text" help:"text or json"`

	// Tracing (OpenTelemetry): off unless an OTLP endpoint is set. The exporter also reads the
	// other standard OTEL_EXPORTER_OTLP_* variables (headers, timeouts, TLS, a traces-only
	// endpoint) and the SDK OTEL_TRACES_SAMPLER.
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"OTLP collector the traces go to (e.g. http://127.0.0.1:4318, or :4317 with grpc); empty: tracing off, at no cost"`
	OTLPProtocol string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"http/protobuf" help:"http/protobuf or grpc"`
	ServiceName  string `env:"OTEL_SERVICE_NAME" envDefault:"flashsale" help:"service.name of the traces"`

	HTTPAddr     string        `env:"HTTP_ADDR" envDefault:":8080" help:"address the API listens on"`
	MaxBodyBytes int64         `env:"HTTP_MAX_BODY_BYTES" envDefault:"65536" help:"largest accepted request body"`
	ShutdownWait time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s" help:"time in-flight requests and tasks get to finish on stop"`
	PprofAddr    string        `env:"PPROF_ADDR" help:"if set, serve net/http/pprof here (e.g. 127.0.0.1:6060; never public)"`
	AdminAddr    string        `env:"ADMIN_ADDR" help:"worker, consumer and all: serve /healthz, /readyz and /metrics here (e.g. :9090); empty: off"`

	DatabaseURL        string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable" help:"PostgreSQL connection URL (the server, or a pgBouncer in front of it)"`
	DatabaseMigrateURL string `env:"DATABASE_MIGRATE_URL" help:"where migrate (and all) apply the migrations: the server itself when DATABASE_URL goes through a transaction-pooling pgBouncer (they hold a session lock); empty: DATABASE_URL"`
	DBMaxConns         int32  `env:"DB_MAX_CONNS" envDefault:"20" help:"PostgreSQL pool size per process"`
	// DBQueryExecMode is how pgx runs a statement; behind a pgBouncer older than 1.21 (or without
	// max_prepared_statements) in transaction mode it must not prepare named statements.
	DBQueryExecMode string `env:"DB_QUERY_EXEC_MODE" envDefault:"cache_statement" help:"how pgx runs statements: cache_statement (named prepared statements, cached per connection), cache_describe (unnamed statements, their types cached: for a transaction-pooling pgBouncer older than 1.21, or without max_prepared_statements) or describe_exec (types asked every time; not through pgBouncer); overrides default_query_exec_mode in DATABASE_URL"`

	RedisURL    string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0" help:"Redis: a single node, a Sentinel group (master_name=) or a Cluster (seeds in addr=); forms below"`
	RedisPrefix string `env:"REDIS_PREFIX" envDefault:"fs" help:"prefix of every Flashsale key in Redis"`
	// RedisDurability is what a reservation must reach before its purchase is answered 202.
	RedisDurability   string        `env:"REDIS_DURABILITY" envDefault:"none" help:"what a reservation reaches before the 202: none (Redis memory; refused in production), aof (Redis must run appendonly yes + appendfsync always, checked at start), replica (WAIT for REDIS_WAIT_REPLICAS replicas, else 503)"`
	RedisWaitReplicas int           `env:"REDIS_WAIT_REPLICAS" envDefault:"1" help:"replicas that must acknowledge a reservation with REDIS_DURABILITY=replica"`
	RestoreFence      time.Duration `env:"INVENTORY_RESTORE_FENCE" envDefault:"3s" help:"after a live sale's lost inventory is restored from PostgreSQL, how long purchases get 503 so that orders accepted before the loss take their stock first"`
	SoldOutTTL        time.Duration `env:"SOLD_OUT_TTL" envDefault:"1s" help:"how long an API node answers purchases of a sale it saw sell out 409 from memory without asking Redis again; stock coming back clears it at once on every node that hears of it, and a node that missed that hears of it within this (0 turns it off)"`
	RedisWaitTimeout  time.Duration `env:"REDIS_WAIT_TIMEOUT" envDefault:"100ms" help:"how long a purchase waits for the replicas before it is answered 503 (REDIS_DURABILITY=replica)"`

	InventoryBackend string `env:"INVENTORY_BACKEND" envDefault:"redis" help:"redis (Lua, the design) or postgres (row-locking baseline, for comparison)"`

	JWTSecret       string        `env:"JWT_SECRET" envDefault:"dev-only-secret-change-me-0123456789abcdef" help:"HS256 signing secret, at least 32 bytes"`
	JWTKeyID        string        `env:"JWT_KEY_ID" envDefault:"k1" help:"key id (kid) of JWT_SECRET"`
	JWTIssuer       string        `env:"JWT_ISSUER" envDefault:"flashsale" help:"iss claim"`
	JWTAudience     string        `env:"JWT_AUDIENCE" envDefault:"flashsale-api" help:"aud claim"`
	JWTPreviousKeys string        `env:"JWT_PREVIOUS_KEYS" help:"retired signing keys still accepted until their tokens expire: kid:secret,kid:secret"`
	AccessTokenTTL  time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m" help:"access token lifetime"`
	RefreshTokenTTL time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"168h" help:"refresh token (session) lifetime"`
	CookieSecure    bool          `env:"COOKIE_SECURE" envDefault:"false" help:"mark auth cookies Secure (always on in production)"`
	BcryptCost      int           `env:"BCRYPT_COST" envDefault:"12" help:"bcrypt cost of password hashes"`
	AdminEmail      string        `env:"ADMIN_EMAIL" envDefault:"admin@flashsale.local" help:"first admin of the default tenant, created at start"`
	AdminPassword   string        `env:"ADMIN_PASSWORD" envDefault:"admin-dev-password" help:"password of ADMIN_EMAIL when it is created"`

	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS" envDefault:"http://localhost:8080,http://localhost:5173" envSeparator:"," help:"origins allowed to call the API from a browser, with credentials"`
	TrustedProxies     []string `env:"TRUSTED_PROXIES" envSeparator:"," help:"CIDRs of proxies whose X-Forwarded-For is believed"`
	RateLimitPurchase  int      `env:"RATE_LIMIT_PURCHASE_PER_MIN" envDefault:"100" help:"purchases per minute per client IP (0: no limit)"`
	RateLimitAuth      int      `env:"RATE_LIMIT_AUTH_PER_MIN" envDefault:"10" help:"requests to /v1/auth/* per minute per client IP (0: no limit)"`

	OrderQueue         string        `env:"ORDER_QUEUE" envDefault:"orders" help:"Asynq queue of order:create tasks"`
	SaleEventsQueue    string        `env:"SALE_EVENTS_QUEUE" envDefault:"sale-events" help:"Asynq queue of the scheduled sale:start / sale:end tasks"`
	OrderAttempts      int           `env:"ORDER_ATTEMPTS" envDefault:"3" help:"attempts at an order PostgreSQL refuses (a permanent error) before it is dead-lettered"`
	OrderRetryBudget   time.Duration `env:"ORDER_RETRY_BUDGET" envDefault:"1h" help:"how long after acceptance an order is retried through transient failures (database down, read-only) before it may be given up"`
	WorkerConcurrency  int           `env:"WORKER_CONCURRENCY" envDefault:"8" help:"orders written to PostgreSQL at once, per worker"`
	WorkerRetryBase    time.Duration `env:"WORKER_RETRY_BASE" envDefault:"1s" help:"first retry delay; doubles per attempt"`
	WorkerRetryMax     time.Duration `env:"WORKER_RETRY_MAX" envDefault:"5s" help:"longest retry delay: an order waits at most this long after an outage ends"`
	WorkerPollInterval time.Duration `env:"WORKER_POLL_INTERVAL" envDefault:"100ms" help:"how often an idle worker looks for tasks"`
	DispatchWorkers    int           `env:"DISPATCH_WORKERS" envDefault:"8" help:"goroutines per API node queueing accepted orders off the request path"`
	DispatchBuffer     int           `env:"DISPATCH_BUFFER" envDefault:"10000" help:"accepted orders per API node waiting to be queued; when full, requests queue inline"`
	DispatchAttempts   int           `env:"DISPATCH_ATTEMPTS" envDefault:"3" help:"tries at queueing an accepted order before the reconciler is left to queue it"`
	DispatchRecent     time.Duration `env:"DISPATCH_RECENT" envDefault:"1m" help:"how long an API node remembers the orders it accepted, to take their stock again and queue them if Redis rolls back and loses them (0: not at all)"`
	DispatchRecentMax  int           `env:"DISPATCH_RECENT_MAX" envDefault:"200000" help:"at most this many remembered orders per sale and API node (DISPATCH_RECENT)"`

	KafkaBrokers         string        `env:"KAFKA_BROKERS" help:"Kafka bootstrap servers; empty: 'all' starts an embedded broker, other roles use 127.0.0.1:KAFKA_EMBEDDED_PORT"`
	KafkaEmbeddedPort    int           `env:"KAFKA_EMBEDDED_PORT" envDefault:"9092" help:"port of the embedded broker (flashsale all / flashsale broker)"`
	KafkaEmbeddedDir     string        `env:"KAFKA_EMBEDDED_DIR" help:"where the embedded broker keeps its log, offsets and producer state across restarts (one broker per directory); empty: in memory, and the relay sends again what a restart lost"`
	KafkaPartitions      int           `env:"KAFKA_PARTITIONS" envDefault:"6" help:"partitions of order.confirmed on the embedded broker"`
	KafkaDeliveryTimeout time.Duration `env:"KAFKA_DELIVERY_TIMEOUT" envDefault:"10s" help:"how long a publish waits for the brokers before it fails"`
	RelayInterval        time.Duration `env:"RELAY_INTERVAL" envDefault:"200ms" help:"how often the outbox relay looks for events"`
	RelayBatch           int           `env:"RELAY_BATCH" envDefault:"500" help:"events published per outbox batch"`
	RelayUnhealthyAfter  time.Duration `env:"RELAY_UNHEALTHY_AFTER" envDefault:"30s" help:"the relay reports unhealthy (ADMIN_ADDR /readyz, flashsale_outbox_relay_healthy) once events have waited this long with nothing published"`
	BreakerFailures      int           `env:"RELAY_BREAKER_FAILURES" envDefault:"3" help:"failed publishes in a row that open the relay's circuit breaker"`
	BreakerOpenFor       time.Duration `env:"RELAY_BREAKER_OPEN_FOR" envDefault:"5s" help:"how long the open breaker fails fast before trying again"`
	PoisonAttempts       int           `env:"CONSUMER_POISON_ATTEMPTS" envDefault:"3" help:"attempts at a poison message before it goes to the dead-letter topic"`
	ConsumerBackoff      time.Duration `env:"CONSUMER_BACKOFF" envDefault:"200ms" help:"first wait after a consumer failure; doubles per attempt"`
	ConsumerMaxBackoff   time.Duration `env:"CONSUMER_MAX_BACKOFF" envDefault:"5s" help:"longest wait between consumer retries: an event is applied at most this long after an outage ends"`
	InventoryCheck       time.Duration `env:"INVENTORY_CHECK_INTERVAL" envDefault:"30s" help:"how often inventory-sync compares Redis with PostgreSQL"`
	SMTPAddr             string        `env:"SMTP_ADDR" help:"SMTP server host:port; empty writes mail to MAIL_DIR instead"`
	SMTPUsername         string        `env:"SMTP_USERNAME" help:"SMTP user, if the server wants one"`
	SMTPPassword         string        `env:"SMTP_PASSWORD" help:"SMTP password"`
	MailFrom             string        `env:"MAIL_FROM" envDefault:"Flashsale <orders@flashsale.local>" help:"sender of order mails"`
	MailDir              string        `env:"MAIL_DIR" envDefault:"var/mail" help:"where mail is written as .eml files when SMTP_ADDR is empty"`

	LiveFlushInterval  time.Duration `env:"LIVE_FLUSH_INTERVAL" envDefault:"200ms" help:"inventory:updated is sent at most once per sale per interval (latest value)"`
	WSMaxConnections   int           `env:"WS_MAX_CONNECTIONS" envDefault:"20000" help:"live WebSocket connections per API node"`
	WSSendBuffer       int           `env:"WS_SEND_BUFFER" envDefault:"64" help:"events queued per connection before it is dropped as slow"`
	WSSnapshotInterval time.Duration `env:"WS_SNAPSHOT_INTERVAL" envDefault:"1s" help:"a connection gets a sale's inventory:updated (and a room's queue:position) at most once per interval, the newest; other events at once (0: every one)"`
	WSPingInterval     time.Duration `env:"WS_PING_INTERVAL" envDefault:"20s" help:"heartbeat; a connection that misses one pong is closed"`
	ReconcileInterval  time.Duration `env:"RECONCILE_INTERVAL" envDefault:"5s" help:"how often the reconciler looks for stranded orders"`
	NodeLease          time.Duration `env:"NODE_LEASE" envDefault:"3s" help:"lease of an API node, renewed while it lives: the orders it accepted and had not queued yet are queued this long after it dies"`
	RoomAdmitInterval  time.Duration `env:"ROOM_ADMIT_INTERVAL" envDefault:"250ms" help:"how often the worker runs the admission pass of the sales' waiting rooms (each admits at its own rate; a pass also tells waiting clients a sell-out)"`
	RoomHeartbeatGrace time.Duration `env:"ROOM_HEARTBEAT_GRACE" envDefault:"30s" help:"how long a shopper waiting in a sale's waiting room may go without polling or joining, once the sale started, before losing the place"`
	NodeCheckInterval  time.Duration `env:"NODE_CHECK_INTERVAL" envDefault:"1s" help:"how often the worker looks for API nodes that died holding accepted orders, and for sale inventories Redis rolled back"`
	ReconcileGrace     time.Duration `env:"RECONCILE_GRACE" envDefault:"10s" help:"age at which an unwritten reservation is re-queued (a request that died between its reservation and the queue)"`
	IdempotencyTTL     time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h" help:"how long purchase answers are kept for replay"`
	IdempotencyLease   time.Duration `env:"IDEMPOTENCY_LEASE" envDefault:"5s" help:"how long a crashed request keeps its idempotency key busy (a retry after it finds the first request's order, if any)"`
	SaleCacheTTL       time.Duration `env:"SALE_CACHE_TTL" envDefault:"1m" help:"lifetime of cached sale details"`
}

// The inventory backends INVENTORY_BACKEND selects.
const (
	// InventoryRedis keeps the stock in Redis, reserved by Lua scripts: the design.
	InventoryRedis = "redis"
	// InventoryPostgres keeps it in PostgreSQL behind a row lock per sale: the baseline the
	// design is measured against.
	InventoryPostgres = "postgres"
)

// The values of OTEL_EXPORTER_OTLP_PROTOCOL this system exports traces with (the standard's
// http/json is not one).
const (
	OTLPHTTP = "http/protobuf"
	OTLPGRPC = "grpc"
)

// The values of REDIS_DURABILITY.
const (
	DurabilityNone    = "none"
	DurabilityAOF     = "aof"
	DurabilityReplica = "replica"
)

// QueryExecModes are the values of DB_QUERY_EXEC_MODE: pgx's query exec modes, by the names of
// its default_query_exec_mode connection parameter, but exec and simple_protocol. Those two send
// no statement to the server before the values, so pgx guesses their types from the Go types, and
// the queries this system runs refuse that: a []uuid.UUID has no type without the server's word
// (uuid[]), a JSON payload held as []byte is sent as bytea.
var QueryExecModes = []string{"cache_statement", "cache_describe", "describe_exec"}

// Load reads the environment and validates the result.
func Load() (Config, error) {
	c, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Production reports whether APP_ENV is production.
func (c Config) Production() bool { return c.AppEnv == "production" }

// Validate rejects settings that cannot work, and dev secrets in production.
func (c Config) Validate() error {
	var errs []error
	if c.AppEnv != "development" && c.AppEnv != "production" && c.AppEnv != "test" {
		errs = append(errs, fmt.Errorf("APP_ENV must be development, test or production, not %q", c.AppEnv))
	}
	if len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JWT_SECRET must be at least 32 bytes"))
	}
	switch c.RedisDurability {
	case DurabilityNone:
		if c.Production() {
			errs = append(errs, errors.New("REDIS_DURABILITY=none loses accepted orders when Redis restarts: production needs aof or replica"))
		}
	case DurabilityAOF:
	case DurabilityReplica:
		if c.RedisWaitReplicas < 1 || c.RedisWaitTimeout <= 0 {
			errs = append(errs, errors.New("REDIS_WAIT_REPLICAS must be at least 1 and REDIS_WAIT_TIMEOUT positive"))
		}
	default:
		errs = append(errs, fmt.Errorf("REDIS_DURABILITY must be none, aof or replica, not %q", c.RedisDurability))
	}
	if c.InventoryBackend != InventoryRedis && c.InventoryBackend != InventoryPostgres {
		errs = append(errs, fmt.Errorf("INVENTORY_BACKEND must be %s or %s, not %q", InventoryRedis, InventoryPostgres, c.InventoryBackend))
	}
	switch {
	case c.DBQueryExecMode == "exec" || c.DBQueryExecMode == "simple_protocol":
		errs = append(errs, fmt.Errorf("DB_QUERY_EXEC_MODE=%s guesses parameter types from Go types, which this system's queries (uuid[], json) refuse: "+
			"behind a transaction-pooling pgBouncer use cache_describe", c.DBQueryExecMode))
	case !slices.Contains(QueryExecModes, c.DBQueryExecMode):
		errs = append(errs, fmt.Errorf("DB_QUERY_EXEC_MODE must be one of %s, not %q", strings.Join(QueryExecModes, ", "), c.DBQueryExecMode))
	}
	if c.OTLPProtocol != OTLPHTTP && c.OTLPProtocol != OTLPGRPC {
		errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL must be %s or %s, not %q", OTLPHTTP, OTLPGRPC, c.OTLPProtocol))
	}
	if c.DBMaxConns < 1 {
		errs = append(errs, errors.New("DB_MAX_CONNS must be at least 1"))
	}
	if c.WorkerConcurrency < 1 || int64(c.WorkerConcurrency) > int64(c.DBMaxConns) {
		errs = append(errs, fmt.Errorf("WORKER_CONCURRENCY must be 1..DB_MAX_CONNS (%d)", c.DBMaxConns))
	}
	if c.RelayBatch < 1 || c.PoisonAttempts < 1 || c.BreakerFailures < 1 || c.KafkaPartitions < 1 {
		errs = append(errs, errors.New("RELAY_BATCH, RELAY_BREAKER_FAILURES, CONSUMER_POISON_ATTEMPTS and KAFKA_PARTITIONS must be at least 1"))
	}
	if c.RelayUnhealthyAfter <= 0 {
		errs = append(errs, errors.New("RELAY_UNHEALTHY_AFTER must be positive"))
	}
	if c.OrderAttempts < 1 {
		errs = append(errs, errors.New("ORDER_ATTEMPTS must be at least 1"))
	}
	if c.OrderRetryBudget <= 0 || c.WorkerRetryBase <= 0 || c.WorkerRetryMax < c.WorkerRetryBase {
		errs = append(errs, errors.New("ORDER_RETRY_BUDGET and WORKER_RETRY_BASE must be positive, WORKER_RETRY_MAX at least WORKER_RETRY_BASE"))
	}
	if c.DispatchWorkers < 1 || c.DispatchAttempts < 1 || c.DispatchBuffer < 0 || c.DispatchRecent < 0 || c.DispatchRecentMax < 0 {
		errs = append(errs, errors.New("DISPATCH_WORKERS and DISPATCH_ATTEMPTS must be at least 1; DISPATCH_BUFFER, DISPATCH_RECENT and DISPATCH_RECENT_MAX not negative"))
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		errs = append(errs, errors.New("BCRYPT_COST must be 4..31"))
	}
	if c.AdminEmail != "" && len(c.AdminPassword) < 10 {
		errs = append(errs, errors.New("ADMIN_PASSWORD must be at least 10 characters"))
	}
	if _, err := c.PreviousKeys(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.RateLimitPurchase < 0 || c.RateLimitAuth < 0 {
		errs = append(errs, errors.New("rate limits must not be negative"))
	}
	for _, o := range c.CORSAllowedOrigins {
		if strings.Contains(o, "*") && c.Production() {
			errs = append(errs, errors.New("APP_ENV=production refuses a wildcard in CORS_ALLOWED_ORIGINS"))
		}
	}
	if c.Production() {
		if c.JWTSecret == DevJWTSecret {
			errs = append(errs, errors.New("APP_ENV=production refuses the development JWT_SECRET"))
		}
		if c.AdminEmail != "" && c.AdminPassword == DevAdminPassword {
			errs = append(errs, errors.New("APP_ENV=production refuses the development ADMIN_PASSWORD"))
		}
		if c.BcryptCost < 10 {
			errs = append(errs, errors.New("APP_ENV=production needs BCRYPT_COST of at least 10"))
		}
	}
	return errors.Join(errs...)
}

// JWTKey is a signing key and its id.
type JWTKey struct {
	ID     string
	Secret string
}

// PreviousKeys parses JWT_PREVIOUS_KEYS.
func (c Config) PreviousKeys() ([]JWTKey, error) {
	var keys []JWTKey
	for _, item := range strings.Split(c.JWTPreviousKeys, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		kid, secret, ok := strings.Cut(item, ":")
		if !ok || kid == "" || len(secret) < 32 {
			return nil, errors.New("JWT_PREVIOUS_KEYS must be kid:secret pairs with secrets of at least 32 bytes")
		}
		keys = append(keys, JWTKey{ID: kid, Secret: secret})
	}
	return keys, nil
}

// TrustedProxyPrefixes parses TRUSTED_PROXIES.
func (c Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Brokers is where Kafka is: KAFKA_BROKERS, or the embedded broker's address.
func (c Config) Brokers() string {
	if c.KafkaBrokers != "" {
		return c.KafkaBrokers
	}
	return fmt.Sprintf("127.0.0.1:%d", c.KafkaEmbeddedPort)
}

// MigrateURL is where the migrations are applied: DATABASE_MIGRATE_URL, or DATABASE_URL.
func (c Config) MigrateURL() string {
	if c.DatabaseMigrateURL != "" {
		return c.DatabaseMigrateURL
	}
	return c.DatabaseURL
}

// SecureCookies reports whether auth cookies carry the Secure attribute.
func (c Config) SecureCookies() bool { return c.CookieSecure || c.Production() }

// Logger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func (c Config) Logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if strings.EqualFold(c.LogFormat, "json") {
		h = slog.NewJSONHandler(stderr, opts)
	}
	return slog.New(h)
}

// Defaults is the configuration with no environment at all: what a local run uses.
func Defaults() Config {
	c, err := env.ParseAsWithOptions[Config](env.Options{Environment: map[string]string{}})
	if err != nil {
		panic(fmt.Sprintf("config defaults: %v", err)) // the tags are wrong: a programming error
	}
	return c
}
