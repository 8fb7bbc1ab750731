package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
)

// SpawnConfig starts a target system as a child process: `flashsale all` on a fresh database,
// a private Redis prefix and queue, free ports, believing X-Forwarded-For from 127.0.0.1.
type SpawnConfig struct {
	Binary        string // the flashsale binary
	Backend       string // INVENTORY_BACKEND: redis or postgres
	AdminDBURL    string // a database on the server to CREATE DATABASE from
	RedisURL      string
	AdminEmail    string
	AdminPassword string
	PoolSize      int
	LogDir        string
	Env           []string // extra KEY=value settings
}

// Target is a spawned system.
type Target struct {
	Label, URL, DatabaseURL string
	cmd                     *exec.Cmd
	cleanup                 []func()
}

// Spawn starts the system and waits until it is ready.
func Spawn(ctx context.Context, c SpawnConfig) (*Target, error) {
	id := randomID()
	t := &Target{Label: c.Backend}
	db := "fs_load_" + c.Backend + "_" + id
	admin, err := pgx.Connect(ctx, c.AdminDBURL)
	if err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		admin.Close(ctx)
		return nil, fmt.Errorf("spawn: create database: %w", err)
	}
	admin.Close(ctx)
	u, _ := url.Parse(c.AdminDBURL)
	u.Path = "/" + db
	t.DatabaseURL = u.String()
	t.cleanup = append(t.cleanup, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, c.AdminDBURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	port, err := freePort()
	if err != nil {
		t.Stop()
		return nil, err
	}
	t.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	prefix, queue := "fsload-"+id, "orders-load-"+id
	mailDir := filepath.Join(os.TempDir(), "fsload-mail-"+id)
	t.cleanup = append(t.cleanup, func() { _ = os.RemoveAll(mailDir) })
	env := append(os.Environ(),
		"APP_ENV=test", "LOG_LEVEL=warn", "BCRYPT_COST=4",
		"HTTP_ADDR=127.0.0.1:"+fmt.Sprint(port), "DATABASE_URL="+t.DatabaseURL, "REDIS_URL="+c.RedisURL,
		"REDIS_PREFIX="+prefix, "ORDER_QUEUE="+queue, "SALE_EVENTS_QUEUE="+queue+"-sales",
		"KAFKA_BROKERS=", "KAFKA_EMBEDDED_PORT=0", "MAIL_DIR="+mailDir,
		"TRUSTED_PROXIES=127.0.0.1/32,::1/128", "INVENTORY_BACKEND="+c.Backend,
		"DB_MAX_CONNS="+fmt.Sprint(c.PoolSize), "ADMIN_EMAIL="+c.AdminEmail, "ADMIN_PASSWORD="+c.AdminPassword)
	env = append(env, c.Env...)
	cmd := exec.Command(c.Binary, "all") //nolint:noctx // not CommandContext: Stop ends it with SIGTERM, gracefully, not SIGKILL
	cmd.Env = env
	logPath := filepath.Join(c.LogDir, "loadtest-"+c.Backend+"-"+id+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Stop()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Stop()
		return nil, fmt.Errorf("spawn: %w", err)
	}
	t.cmd = cmd
	t.cleanup = append(t.cleanup, func() { _ = logFile.Close() }, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rdb, err := redisadapter.NewClient(c.RedisURL)
		if err != nil {
			return
		}
		defer rdb.Close()
		for _, pattern := range []string{prefix + ":*", "rate:" + prefix + ":*", "asynq:{" + queue + "}:*", "asynq:{" + queue + "-sales}:*"} {
			_ = redisadapter.ForEachMaster(ctx, rdb, func(ctx context.Context, m goredis.UniversalClient) error {
				iter := m.Scan(ctx, 0, pattern, 1000).Iterator()
				for iter.Next(ctx) {
					m.Unlink(ctx, iter.Val())
				}
				return iter.Err()
			})
		}
		rdb.SRem(ctx, "asynq:queues", queue, queue+"-sales")
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/readyz", nil)
		if err != nil {
			t.Stop()
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		if time.Now().After(deadline) {
			t.Stop()
			return nil, fmt.Errorf("spawn %s: not ready after 60 s; see %s", c.Backend, logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends the process gracefully and removes its database and keys.
func (t *Target) Stop() {
	if t.cmd != nil && t.cmd.Process != nil {
		_ = t.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = t.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = t.cmd.Process.Kill()
			<-done
		}
	}
	for i := len(t.cleanup) - 1; i >= 0; i-- {
		t.cleanup[i]()
	}
}

func freePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
