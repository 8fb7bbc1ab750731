package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/testutil"
)

// TestReadinessWhileTheDatabaseRefusesWrites: /readyz answers 503 while PostgreSQL is read-only,
// naming the dependency and why, and nothing of its address or user; 200 once it takes writes.
func TestReadinessWhileTheDatabaseRefusesWrites(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	u, err := url.Parse(sys.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, testutil.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	readOnly := func(on bool) {
		t.Helper()
		stmt := "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " RESET default_transaction_read_only"
		if on {
			stmt = "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " SET default_transaction_read_only = on"
		}
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
		// Sessions take the setting when they start: end the system's, its pool opens new ones.
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db); err != nil {
			t.Fatal(err)
		}
	}

	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"}); r.Status != http.StatusOK {
		t.Fatalf("readyz before: %d %s", r.Status, r.Body)
	}
	readOnly(true)
	var r testutil.Response
	// (The first probe may meet a connection just ended: "postgres unreachable".)
	testutil.WaitFor(t, 10*time.Second, "readyz to answer 503 read-only", func() bool {
		r = c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"})
		return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "read-only")
	})
	detail, _ := r.JSON(t)["detail"].(string)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %v", r.Header)
	}
	if r.ProblemType() != "unavailable" || detail != "not ready: postgres read-only" {
		t.Fatalf("readyz while read-only: %s, want detail %q", r.Body, "not ready: postgres read-only")
	}
	for _, secret := range []string{u.Host, u.Hostname(), u.Port(), "postgres://", db, "SQLSTATE"} {
		if secret != "" && strings.Contains(string(r.Body), secret) {
			t.Errorf("readyz shows %q to an anonymous caller: %s", secret, r.Body)
		}
	}
	readOnly(false)
	testutil.WaitFor(t, 10*time.Second, "readyz to answer 200 again", func() bool {
		return c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"}).Status == http.StatusOK
	})
}

// The API node's readiness includes its bootstrap (the default tenant and admin): a login right
// after a 200 works.
func TestReadinessIncludesTheBootstrap(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	r := c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"})
	checks, _ := r.JSON(t)["checks"].(map[string]any)
	if r.Status != http.StatusOK || checks["bootstrap"] != "ok" {
		t.Fatalf("readyz = %d %s; want 200 with the bootstrap check ok", r.Status, r.Body)
	}
	login := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
		Body: map[string]any{"email": sys.Config.AdminEmail, "password": testutil.AdminPassword}})
	if login.Status != http.StatusOK {
		t.Fatalf("admin login right after readiness = %d %s", login.Status, login.Body)
	}
}
