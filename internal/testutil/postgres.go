package testutil

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db/migrations"
	"github.com/flashsale/flashsale/internal/adapters/postgres"
)

// AdminURL is the server tests create their databases on (TEST_DATABASE_URL).
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// PoolerURL is a pooler in front of AdminURL's server (TEST_DATABASE_POOLER_URL, e.g. the
// pgBouncer of scripts/pgbouncer.sh), or empty. With it, the databases tests get are created and
// migrated on the server and used through the pooler: their URLs name the pooler, DirectURL the
// server. DB_QUERY_EXEC_MODE must then name a mode the pooler takes (QueryExecMode).
func PoolerURL() string { return os.Getenv("TEST_DATABASE_POOLER_URL") }

// QueryExecMode is DB_QUERY_EXEC_MODE as the tests were started with: how the pools of tests and
// test systems run statements (empty: pgx's default). The processes tests start inherit it.
func QueryExecMode() string { return os.Getenv("DB_QUERY_EXEC_MODE") }

// DirectURL is the URL of a test database on the server itself, bypassing PoolerURL.
func DirectURL(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(err)
	}
	return withDatabase(AdminURL(), strings.TrimPrefix(u.Path, "/"))
}

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewDatabase creates a fresh database with every migration applied, dropped when t ends.
// It is cloned from a template built once per migration set, so it costs milliseconds.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("testutil: connect to PostgreSQL (%s): %v", AdminURL(), err)
	}
	defer admin.Close(ctx)
	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("testutil: template database: %v", err)
	}
	name := "fs_test_" + randomHex(6)
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl))
		// Another test cloning the template at the same instant makes PostgreSQL refuse: retry.
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testutil: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Logf("testutil: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testutil: drop %s: %v", name, err)
		}
	})
	if pooler := PoolerURL(); pooler != "" {
		return withDatabase(pooler, name)
	}
	return withDatabase(AdminURL(), name)
}

// NewPool opens a pool on a fresh database, closed when t ends.
func NewPool(t testing.TB, maxConns int32) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := NewDatabase(t)
	pool, err := postgres.Open(context.Background(), dbURL, postgres.PoolOptions{MaxConns: maxConns, QueryExecMode: QueryExecMode()})
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// ensureTemplate builds the template for the current migrations once, under an advisory lock
// so that test binaries running in parallel do not race.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	tmpl := "fs_tmpl_" + sum
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7420131)"); err != nil {
		return "", err
	}
	defer func() { _, _ = admin.Exec(context.Background(), "SELECT pg_advisory_unlock(7420131)") }()
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return tmpl, nil
	}
	building := tmpl + "_b"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	pool, err := postgres.Open(ctx, withDatabase(AdminURL(), building), postgres.PoolOptions{MaxConns: 2})
	if err != nil {
		return "", err
	}
	err = postgres.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	pool.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+tmpl); err != nil {
		return "", err
	}
	return tmpl, nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
