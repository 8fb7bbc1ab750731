package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/config"
)

// TestPoolConfigTakesEveryQueryExecMode: each DB_QUERY_EXEC_MODE the configuration accepts is a
// pgx mode the pool runs in; the default is pgx's own.
func TestPoolConfigTakesEveryQueryExecMode(t *testing.T) {
	t.Parallel()
	const url = "postgres://postgres@127.0.0.1:6432/flashsale"
	want := map[string]pgx.QueryExecMode{
		"cache_statement": pgx.QueryExecModeCacheStatement,
		"cache_describe":  pgx.QueryExecModeCacheDescribe,
		"describe_exec":   pgx.QueryExecModeDescribeExec,
	}
	for _, name := range config.QueryExecModes {
		cfg, err := postgres.PoolConfig(url, postgres.PoolOptions{MaxConns: 3, QueryExecMode: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := cfg.ConnConfig.DefaultQueryExecMode; got != want[name] || cfg.MaxConns != 3 {
			t.Errorf("%s: mode %v, max conns %d", name, got, cfg.MaxConns)
		}
	}
	cfg, err := postgres.PoolConfig(url, postgres.PoolOptions{MaxConns: 1})
	if err != nil || cfg.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		t.Fatalf("no mode: %v %v", cfg.ConnConfig.DefaultQueryExecMode, err)
	}
	if _, err := postgres.PoolConfig(url, postgres.PoolOptions{MaxConns: 1, QueryExecMode: "prepare"}); err == nil {
		t.Fatal("an unknown mode was taken")
	}
}
