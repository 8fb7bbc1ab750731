package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/adapters/postgres/sqlcdb"
	"github.com/flashsale/flashsale/internal/domain"
)

// PoolOptions shape a pool.
type PoolOptions struct {
	// MaxConns bounds its connections (DB_MAX_CONNS).
	MaxConns int32
	// QueryExecMode is how pgx runs statements (DB_QUERY_EXEC_MODE), by the names of its
	// default_query_exec_mode parameter; empty: cache_statement, pgx's default. A pgBouncer in
	// transaction pooling mode hands each transaction any server connection, where a statement
	// another one prepared does not exist: before 1.21 (max_prepared_statements) only the modes
	// that prepare no named statement work through it (cache_describe, exec, simple_protocol).
	QueryExecMode string
}

// queryExecModes maps DB_QUERY_EXEC_MODE to pgx's modes.
var queryExecModes = map[string]pgx.QueryExecMode{
	"cache_statement": pgx.QueryExecModeCacheStatement,
	"cache_describe":  pgx.QueryExecModeCacheDescribe,
	"describe_exec":   pgx.QueryExecModeDescribeExec,
	"exec":            pgx.QueryExecModeExec,
	"simple_protocol": pgx.QueryExecModeSimpleProtocol,
}

// PoolConfig is the configuration Open connects with.
func PoolConfig(url string, o PoolOptions) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", err)
	}
	if o.QueryExecMode != "" {
		mode, ok := queryExecModes[o.QueryExecMode]
		if !ok {
			return nil, fmt.Errorf("postgres: unknown query exec mode %q", o.QueryExecMode)
		}
		cfg.ConnConfig.DefaultQueryExecMode = mode
	}
	cfg.MaxConns = o.MaxConns
	cfg.MaxConnIdleTime = 5 * time.Minute
	return cfg, nil
}

// Open connects a pool and checks it answers.
func Open(ctx context.Context, url string, o PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := PoolConfig(url, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return pool, nil
}

// Store implements every repository port on one pool.
type Store struct {
	pool *pgxpool.Pool
	q    *sqlcdb.Queries
}

// NewStore wraps a pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, q: sqlcdb.New(pool)}
}

// Name and Ping make the store a readiness check.
func (s *Store) Name() string { return "postgres" }

// Ping checks that PostgreSQL answers and takes writes: a primary, not read-only. Its error's
// Reason says which ("unreachable", "read-only") without the driver's details.
func (s *Store) Ping(ctx context.Context) error {
	var writable bool
	err := s.pool.QueryRow(ctx,
		"SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'").Scan(&writable)
	switch {
	case err != nil:
		return NotReady{reason: "unreachable", err: err}
	case !writable:
		return NotReady{reason: "read-only", err: errors.New("postgres: the database refuses writes")}
	}
	return nil
}

// NotReady is a failed readiness check: Reason is fit for anyone to read, Error for the logs.
type NotReady struct {
	reason string
	err    error
}

func (e NotReady) Error() string  { return e.reason + ": " + e.err.Error() }
func (e NotReady) Unwrap() error  { return e.err }
func (e NotReady) Reason() string { return e.reason }

// Pool exposes the pool for metrics and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) inTx(ctx context.Context, fn func(q *sqlcdb.Queries) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
}

// PostgreSQL error codes this adapter classifies.
const (
	uniqueViolation = "23505"
)

// Permanent reports whether PostgreSQL refused the data itself, so that the same write can never
// succeed: a data exception (SQLSTATE class 22, e.g. a value out of range or a NUL byte in text)
// or an integrity constraint violation (class 23: unique, foreign key, check, not null). Every
// other failure is transient, however it looks: connection refused or reset, a closed
// connection, a timeout or cancelled context, a read-only transaction (25006), too many
// connections (53300), a server shutting down (57P01), a serialization failure (40001). A
// transient failure says nothing about whether the write happened; it must be retried, never
// taken for success and never given up as permanent.
func Permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	class := pe.Code[:min(2, len(pe.Code))]
	return class == "22" || class == "23"
}

// classify is the one way this adapter returns a failed write: nil stays nil, a permanent
// failure wraps domain.ErrPermanent, and everything else is returned, wrapped with op, to be
// retried.
func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case Permanent(err):
		return fmt.Errorf("%s: %w: %w", op, err, domain.ErrPermanent)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

func pgCode(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}
