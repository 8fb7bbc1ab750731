package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Layouts of the system under test.
const (
	layoutAll   = "all"   // one `flashsale all` process (embedded broker inside)
	layoutSplit = "split" // flashsale broker, serve (one or more), worker, one process per consumer group
)

// Admin credentials of the system under test (its first admin, created at start).
const (
	adminEmail    = "admin@chaos.test"
	adminPassword = "chaos-admin-password"
)

// consumerGroups are the consumer roles (flashsale consumer <name>) and their group names in
// processed_events.
var consumerGroups = []struct{ role, group string }{
	{"email", "flashsale-email"},
	{"analytics", "flashsale-analytics"},
	{"inventory-sync", "flashsale-inventory-sync"},
}

// System is the system under test: flashsale processes, children of this one.
type System struct {
	bin    string
	logDir string
	env    []string // settings every process gets

	mu    sync.Mutex
	procs map[string]*process
	order []string // start order
	// APIs are the base URLs of the API processes, in node order.
	APIs    []string
	apiRole []string // role name of each API
	// Broker is host:port of the broker process (split layout).
	Broker string
}

type process struct {
	name string
	args []string
	env  []string // this process's own settings, after the shared ones
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// systemConfig is what a system is started on.
type systemConfig struct {
	Bin, LogDir   string
	Layout        string
	APINodes      int // split layout: API processes (default 1)
	DatabaseURL   string
	RedisURL      string
	SMTPAddr      string
	Env           []string // extra KEY=value settings (--env), after the suite's own
	ReadyDeadline time.Duration
}

func startSystem(ctx context.Context, c systemConfig) (*System, error) {
	s := &System{bin: c.Bin, logDir: c.LogDir, procs: map[string]*process{}}
	s.env = append(os.Environ(),
		"APP_ENV=test", "LOG_LEVEL=warn", "BCRYPT_COST=4",
		"DATABASE_URL="+c.DatabaseURL, "REDIS_URL="+c.RedisURL,
		"ADMIN_EMAIL="+adminEmail, "ADMIN_PASSWORD="+adminPassword,
		"TRUSTED_PROXIES=127.0.0.1/32", "SMTP_ADDR="+c.SMTPAddr,
		"MAIL_DIR="+filepath.Join(c.LogDir, "mail"), "PPROF_ADDR=")
	s.env = append(s.env, c.Env...)
	if c.Layout == layoutAll {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.add("all", []string{"all"}, "HTTP_ADDR=127.0.0.1:"+fmt.Sprint(port), "KAFKA_BROKERS=", "KAFKA_EMBEDDED_PORT=0")
		s.APIs, s.apiRole = []string{fmt.Sprintf("http://127.0.0.1:%d", port)}, []string{"all"}
		if err := s.Start(ctx, "all"); err != nil {
			return s, err
		}
		if err := s.waitReady(ctx, 0, c.ReadyDeadline); err != nil {
			return s, err
		}
		return s, nil
	}

	// Split: migrate first, then the broker, then every role against it.
	migrate := exec.CommandContext(ctx, c.Bin, "migrate")
	migrate.Env = s.env
	if out, err := migrate.CombinedOutput(); err != nil {
		return s, fmt.Errorf("flashsale migrate: %w: %s", err, out)
	}
	kport, err := freePort()
	if err != nil {
		return nil, err
	}
	brokers := fmt.Sprintf("127.0.0.1:%d", kport)
	s.Broker = brokers
	s.add("broker", []string{"broker"}, "KAFKA_EMBEDDED_PORT="+fmt.Sprint(kport))
	if err := s.Start(ctx, "broker"); err != nil {
		return s, err
	}
	if err := waitPort(ctx, brokers, 30*time.Second); err != nil {
		return s, fmt.Errorf("flashsale broker: %w", err)
	}
	for i := range max(c.APINodes, 1) {
		port, err := freePort()
		if err != nil {
			return s, err
		}
		name := fmt.Sprintf("serve-%c", 'a'+i)
		s.add(name, []string{"serve"}, "HTTP_ADDR=127.0.0.1:"+fmt.Sprint(port), "KAFKA_BROKERS="+brokers)
		s.APIs = append(s.APIs, fmt.Sprintf("http://127.0.0.1:%d", port))
		s.apiRole = append(s.apiRole, name)
	}
	s.add("worker", []string{"worker"}, "KAFKA_BROKERS="+brokers)
	for _, g := range consumerGroups {
		s.add("consumer-"+g.role, []string{"consumer", g.role}, "KAFKA_BROKERS="+brokers)
	}
	for _, name := range s.order[1:] {
		if err := s.Start(ctx, name); err != nil {
			return s, err
		}
	}
	for i := range s.APIs {
		if err := s.waitReady(ctx, i, c.ReadyDeadline); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *System) add(name string, args []string, env ...string) {
	s.procs[name] = &process{name: name, args: args, env: env}
	s.order = append(s.order, name)
}

// Start starts (or starts again) one process; its output is appended to <logdir>/<name>.log.
func (s *System) Start(_ context.Context, name string, env ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[name]
	if p == nil {
		return fmt.Errorf("no process %q", name)
	}
	p.env = append(p.env, env...)
	if p.log == nil {
		f, err := os.OpenFile(filepath.Join(s.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		p.log = f
	}
	fmt.Fprintf(p.log, "--- chaos: started at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, p.args...) //nolint:noctx // stopped by Signal/Stop (SIGTERM, then SIGKILL), not by a context
	cmd.Env = append(append([]string{}, s.env...), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// The system dies with the suite, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// Kill sends SIGKILL to a process and waits for it to end.
func (s *System) Kill(name string) { s.stop(name, syscall.SIGKILL, 0) }

// Stop ends a process gracefully (SIGTERM), killing it if it takes longer than 30 s.
func (s *System) Stop(name string) { s.stop(name, syscall.SIGTERM, 30*time.Second) }

func (s *System) stop(name string, sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil || p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-p.done:
			return
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.done
	fmt.Fprintf(p.log, "--- chaos: ended by %s at %s\n", sig, time.Now().Format(time.RFC3339Nano))
}

// Restart stops every process but the broker gracefully and starts them again with extra
// settings (a new REDIS_URL after a failover), in the same order, and waits for the APIs. The
// broker keeps running: it keeps its events in memory, and does not use Redis.
func (s *System) Restart(ctx context.Context, deadline time.Duration, env ...string) error {
	for i := len(s.order) - 1; i >= 0; i-- {
		if s.order[i] != "broker" {
			s.Stop(s.order[i])
		}
	}
	for _, name := range s.order {
		if name == "broker" {
			continue
		}
		if err := s.Start(ctx, name, env...); err != nil {
			return err
		}
	}
	for i := range s.APIs {
		if err := s.waitReady(ctx, i, deadline); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every process gracefully, the last started first.
func (s *System) Close() {
	for i := len(s.order) - 1; i >= 0; i-- {
		s.Stop(s.order[i])
	}
	for _, p := range s.procs {
		if p.log != nil {
			_ = p.log.Close()
		}
	}
}

// waitReady waits for an API's /readyz.
func (s *System) waitReady(ctx context.Context, node int, within time.Duration) error {
	if within == 0 {
		within = 60 * time.Second
	}
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIs[node]+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		s.mu.Lock()
		p := s.procs[s.apiRole[node]]
		s.mu.Unlock()
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready; see %s", p.name, filepath.Join(s.logDir, p.name+".log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after %s; see %s", p.name, within, filepath.Join(s.logDir, p.name+".log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitPort(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	d := net.Dialer{Timeout: time.Second}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s", addr, within)
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		time.Sleep(50 * time.Millisecond)
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
