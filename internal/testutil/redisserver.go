package testutil

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisServer is a private redis-server process a test starts (for persistence, replication
// and failover), stopped when the test ends.
type RedisServer struct {
	Addr   string
	Client *goredis.Client
	cmd    *exec.Cmd
}

// StartRedisServer runs redis-server on a free loopback port with its files in a temporary
// directory and no snapshots, plus args (e.g. "--appendonly", "yes").
func StartRedisServer(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	port := freePort(t)
	all := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
		"--save", "", "--daemonize", "no", "--protected-mode", "no", "--repl-diskless-sync-delay", "0"}, args...)
	cmd := exec.CommandContext(context.Background(), "redis-server", all...) //nolint:gosec // G204: the test's own arguments
	if err := cmd.Start(); err != nil {
		t.Fatalf("testutil: start redis-server (is it installed? ./scripts/services.sh installs it): %v", err)
	}
	s := &RedisServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	s.Client = goredis.NewClient(&goredis.Options{Addr: s.Addr})
	t.Cleanup(func() {
		_ = s.Client.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	WaitFor(t, 10*time.Second, "redis-server on "+s.Addr, func() bool {
		return s.Client.Ping(context.Background()).Err() == nil
	})
	return s
}

// StartReplica runs a redis-server replicating s and waits until s counts it as connected.
func (s *RedisServer) StartReplica(t testing.TB) *RedisServer {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.Addr)
	r := StartRedisServer(t, "--replicaof", host, port)
	WaitFor(t, 10*time.Second, "the replica to be in sync", func() bool {
		info, err := s.Client.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
