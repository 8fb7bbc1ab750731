package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis persistence modes of a private server.
const (
	persistNone = "none" // no RDB, no AOF: a restart starts empty
	persistAOF  = "aof"  // appendonly yes, appendfsync everysec
	// persistAOFAlways: appendonly yes, appendfsync always (REDIS_DURABILITY=aof).
	persistAOFAlways = "aof-always"
)

// Redis is one private redis-server, a child process on its own port and directory.
type Redis struct {
	bin     string
	dir     string
	Port    int
	persist string
	extra   []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newRedis(ctx context.Context, bin, dir, persist string, extra ...string) (*Redis, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &Redis{bin: bin, dir: dir, Port: port, persist: persist, extra: extra, logPath: filepath.Join(dir, "redis.log")}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// args are the server's settings. With AOF, automatic rewrites are off so that the append-only
// file the host-crash fault truncates is the one being written.
func (r *Redis) args(persist string) []string {
	// A replica resyncs at once after a restart, as docs/reliability.md recommends for
	// REDIS_DURABILITY=replica (the default waits 5 s, every purchase answered 503 meanwhile).
	a := []string{"--port", fmt.Sprint(r.Port), "--bind", "127.0.0.1", "--dir", r.dir, "--save", "",
		"--logfile", r.logPath, "--daemonize", "no", "--repl-diskless-sync-delay", "0"}
	switch persist {
	case persistAOF:
		a = append(a, "--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0")
	case persistAOFAlways:
		a = append(a, "--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0")
	default:
		a = append(a, "--appendonly", "no")
	}
	return append(a, r.extra...)
}

// Start starts the server with its persistence settings and waits until it answers.
func (r *Redis) Start(ctx context.Context) error { return r.start(ctx, r.persist) }

func (r *Redis) start(ctx context.Context, persist string) error {
	cmd := exec.Command(r.bin, r.args(persist)...) //nolint:noctx // stopped by Kill or Shutdown, not by a context
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	c := r.Client()
	defer c.Close()
	for {
		// LOADING (replaying the AOF) is an error to PING; wait for the real answer.
		if err := c.Ping(ctx).Err(); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited; see %s", r.Port, r.logPath)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server on port %d not ready after 30 s; see %s", r.Port, r.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL: no save, no AOF flush beyond what the kernel holds.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// URL is the address the system is given.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Client is a client of this server; the caller closes it.
func (r *Redis) Client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port), MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
}

// Do runs one command on the server.
func (r *Redis) Do(ctx context.Context, args ...any) (any, error) {
	c := r.Client()
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// Snapshot writes the dataset to disk (SAVE) and keeps a copy of the RDB file, to restore later.
func (r *Redis) Snapshot(ctx context.Context, to string) error {
	if _, err := r.Do(ctx, "SAVE"); err != nil {
		return fmt.Errorf("redis SAVE: %w", err)
	}
	return copyFile(filepath.Join(r.dir, "dump.rdb"), to)
}

// RestoreSnapshot kills the server and starts it again from an older RDB file, as restoring a
// backup does: the append-only files are removed, the server loads the RDB (Redis ignores it
// while appendonly is on), then append-only persistence is switched back on.
func (r *Redis) RestoreSnapshot(ctx context.Context, from string) error {
	r.Kill()
	if err := os.RemoveAll(filepath.Join(r.dir, "appendonlydir")); err != nil {
		return err
	}
	if err := copyFile(from, filepath.Join(r.dir, "dump.rdb")); err != nil {
		return err
	}
	if err := r.start(ctx, persistNone); err != nil {
		return err
	}
	if r.persist == persistAOF || r.persist == persistAOFAlways {
		if _, err := r.Do(ctx, "CONFIG", "SET", "appendonly", "yes"); err != nil {
			return fmt.Errorf("redis: append-only back on: %w", err)
		}
	}
	return nil
}

// aofTail is the append-only file Redis is appending to now (the last incremental file of the
// manifest, Redis 7), or "" without AOF.
func (r *Redis) aofTail() (string, error) {
	dir := filepath.Join(r.dir, "appendonlydir")
	f, err := os.Open(filepath.Join(dir, "appendonly.aof.manifest"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var last string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// file appendonly.aof.1.incr.aof seq 1 type i
		fields := strings.Fields(s.Text())
		if len(fields) >= 6 && fields[0] == "file" && fields[5] == "i" {
			last = fields[1]
		}
	}
	if last == "" {
		return "", errors.New("redis: no incremental append-only file in the manifest")
	}
	return filepath.Join(dir, last), s.Err()
}

// aofSizes samples the size of the append-only file every 50 ms until ctx ends, so that a host
// crash can be modelled by cutting the file back to what it held a second earlier.
type aofSizes struct {
	mu      sync.Mutex
	path    string
	samples []aofSample
}

type aofSample struct {
	at   time.Time
	size int64
}

func (r *Redis) sampleAOF(ctx context.Context) (*aofSizes, error) {
	path, err := r.aofTail()
	if err != nil {
		return nil, err
	}
	s := &aofSizes{path: path}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if fi, err := os.Stat(path); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, aofSample{at: time.Now(), size: fi.Size()})
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// sizeAt is the last size sampled at or before t (0 if none).
func (s *aofSizes) sizeAt(t time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sizeAt(s.samples, t)
}

func sizeAt(samples []aofSample, t time.Time) int64 {
	var size int64
	for _, x := range samples {
		if x.at.After(t) {
			break
		}
		size = x.size
	}
	return size
}

func copyFile(from, to string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, raw, 0o600)
}
