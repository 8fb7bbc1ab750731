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

// StartRedisCluster runs a Redis Cluster of len(nodeArgs) masters and no replicas, node i started
// with nodeArgs[i] (see StartRedisServer), and returns them once every node serves every slot.
// Connect with the URL form redis://<first>?addr=<second>&...
func StartRedisCluster(t testing.TB, nodeArgs ...[]string) []*RedisServer {
	t.Helper()
	var nodes []*RedisServer
	create := []string{"--cluster", "create"}
	for _, args := range nodeArgs {
		s := StartRedisServer(t, append([]string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(freePort(t))}, args...)...)
		nodes = append(nodes, s)
		create = append(create, s.Addr)
	}
	out, err := exec.CommandContext(context.Background(), "redis-cli", append(create, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput() //nolint:gosec // G204: the test's own arguments
	if err != nil {
		t.Fatalf("testutil: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range nodes {
		WaitFor(t, 10*time.Second, "the cluster to serve every slot at "+s.Addr, func() bool {
			info, err := s.Client.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return nodes
}
