package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/wiring"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestHelpListsRolesAndConfiguration: the root help and each role's help name every role and
// every configuration variable with its default.
func TestHelpListsRolesAndConfiguration(t *testing.T) {
	roleNames := []string{"all", "serve", "worker", "migrate", "broker", "loadtest", "healthcheck", "version",
		"consumer " + strings.Join(wiring.ConsumerNames, "|")}
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"worker", "--help"}, {"consumer", "--help"}, {"migrate", "--help"}} {
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, name := range roleNames {
			if !strings.Contains(out, "flashsale "+name) {
				t.Errorf("%v: role %q missing from the help", args, name)
			}
		}
		if len(config.Vars()) == 0 {
			t.Fatal("config.Vars() is empty")
		}
		for _, v := range config.Vars() {
			if !strings.Contains(out, "  "+v.Name+" ") || !strings.Contains(out, "["+v.Default+"]") {
				t.Errorf("%v: %s [%s] missing from the help", args, v.Name, v.Default)
			}
		}
	}
}

// TestHelpShowsEachRedisForm: the help gives an example of each form of REDIS_URL, and each
// example builds the client it stands for.
func TestHelpShowsEachRedisForm(t *testing.T) {
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range redisForms {
		if !strings.Contains(out, f.example) {
			t.Errorf("REDIS_URL example %s missing from the help", f.example)
		}
		rdb, err := redisadapter.NewClient(f.example)
		if err != nil {
			t.Errorf("REDIS_URL example %s: %v", f.example, err)
			continue
		}
		switch c := rdb.(type) {
		case *goredis.ClusterClient:
			kinds["cluster"]++
		case *goredis.Client:
			if strings.Contains(f.example, "master_name=") {
				kinds["sentinel"]++
			} else {
				kinds["single"]++
			}
			if strings.HasPrefix(f.example, "rediss://") && c.Options().TLSConfig == nil {
				t.Errorf("REDIS_URL example %s: no TLS", f.example)
			}
		}
		_ = rdb.Close()
	}
	if kinds["single"] == 0 || kinds["sentinel"] == 0 || kinds["cluster"] == 0 {
		t.Errorf("the help's REDIS_URL examples build %v, want each topology", kinds)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "flashsale ") || strings.TrimSpace(strings.TrimPrefix(out, "flashsale ")) == "" {
		t.Errorf("version printed %q", out)
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	t.Setenv("HTTP_ADDR", ":"+port)
	if out, err := run(t, "healthcheck"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("healthy API: %q, %v", out, err)
	}
	status = http.StatusServiceUnavailable
	if _, err := run(t, "healthcheck"); err == nil {
		t.Fatal("a 503 passed the health check")
	}
	srv.Close()
	if _, err := run(t, "healthcheck", "--url", srv.URL+"/healthz", "--timeout", "1s"); err == nil {
		t.Fatal("a closed port passed the health check")
	}
}

// TestHealthcheckAdmin: --admin probes ADMIN_ADDR, at --path.
func TestHealthcheckAdmin(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
		case r.URL.Path == "/readyz" && ready:
		case r.URL.Path == "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	t.Setenv("HTTP_ADDR", "127.0.0.1:1") // nothing there: the API is not what is probed
	t.Setenv("ADMIN_ADDR", ":"+port)
	for _, args := range [][]string{{"healthcheck", "--admin"}, {"healthcheck", "--admin", "--path", "/readyz"}} {
		if out, err := run(t, args...); err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("%v: %q, %v", args, out, err)
		}
	}
	ready = false
	if _, err := run(t, "healthcheck", "--admin", "--path", "/readyz"); err == nil {
		t.Fatal("a worker whose relay cannot publish passed the readiness probe")
	}
	if _, err := run(t, "healthcheck", "--admin"); err != nil {
		t.Fatalf("/healthz of a live worker: %v", err)
	}
	t.Setenv("ADMIN_ADDR", "")
	if _, err := run(t, "healthcheck", "--admin"); err == nil || !strings.Contains(err.Error(), "ADMIN_ADDR") {
		t.Fatalf("--admin without ADMIN_ADDR = %v, want an error naming it", err)
	}
}

func TestLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080",
		":9000":          "http://127.0.0.1:9000",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"[::]:9000":      "http://127.0.0.1:9000",
		"10.1.2.3:9000":  "http://10.1.2.3:9000",
		"localhost:9000": "http://localhost:9000",
	} {
		if got := localURL(addr); got != want {
			t.Errorf("localURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestARoleThatCannotStartSaysWhy: the first failure is returned (and printed by main), not the
// dependency chain, and not nothing.
func TestARoleThatCannotStartSaysWhy(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/flashsale?sslmode=disable")
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	_, err := run(t, "serve")
	if err == nil || !strings.HasPrefix(err.Error(), "postgres: ping:") || strings.Contains(err.Error(), "could not build") {
		t.Fatalf("serve with PostgreSQL unreachable = %v, want the root cause (postgres: ping: ...)", err)
	}
}
