package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// appDatabase is the database the system under test uses on the private server.
const appDatabase = "flashsale"

// pgTools finds initdb and pg_ctl and says who runs them: initdb and postgres refuse to run as
// root, so a root caller runs them as runAs (through runuser), owner of the data directories.
type pgTools struct {
	binDir string
	runAs  *user.User // nil: the current user
}

// findPostgres looks for the server binaries: dir if given, else the newest
// /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), else initdb on PATH.
func findPostgres(dir, runAs string) (pgTools, error) {
	var t pgTools
	switch {
	case dir != "":
		t.binDir = dir
	default:
		versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		sort.Slice(versions, func(i, j int) bool { return versionOf(versions[i]) < versionOf(versions[j]) })
		if len(versions) > 0 {
			t.binDir = filepath.Dir(versions[len(versions)-1])
		} else if p, err := exec.LookPath("initdb"); err == nil {
			t.binDir = filepath.Dir(p)
		}
	}
	if _, err := os.Stat(filepath.Join(t.binDir, "initdb")); t.binDir == "" || err != nil {
		return t, errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install them " +
			"(./scripts/chaos.sh does, with apt-get) or give --pg-bin")
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(runAs)
		if err != nil {
			return t, fmt.Errorf("running as root: initdb refuses root, and the user %q to run PostgreSQL as "+
				"does not exist (the postgresql package creates it; or give --pg-user): %w", runAs, err)
		}
		t.runAs = u
	}
	return t, nil
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// command runs a PostgreSQL tool as the right user.
func (t pgTools) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	bin := filepath.Join(t.binDir, tool)
	if t.runAs == nil {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", t.runAs.Username, "--", bin}, args...)...)
}

// own gives path, recursively, to the PostgreSQL user.
func (t pgTools) own(ctx context.Context, path string) error {
	if t.runAs == nil {
		return nil
	}
	return run(exec.CommandContext(ctx, "chown", "-R", t.runAs.Uid+":"+t.runAs.Gid, path))
}

func run(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// initTemplate makes a cluster once per invocation (initdb takes seconds); every row starts
// from a copy of it.
func (t pgTools) initTemplate(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := t.own(ctx, dir); err != nil {
		return err
	}
	return run(t.command(ctx, "initdb", "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"))
}

// Postgres is one private server: a copy of the template cluster on its own port, reachable on
// 127.0.0.1 only, its socket in its own directory.
type Postgres struct {
	tools   pgTools
	dataDir string
	sockDir string
	logFile string
	Port    int
}

func newPostgres(ctx context.Context, tools pgTools, template, dir string) (*Postgres, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Postgres{tools: tools, dataDir: filepath.Join(dir, "data"), sockDir: dir, logFile: filepath.Join(dir, "postgres.log"), Port: port}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := run(exec.CommandContext(ctx, "cp", "-a", template, p.dataDir)); err != nil {
		return nil, err
	}
	if err := tools.own(ctx, dir); err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	conn, err := p.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+appDatabase); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	return p, nil
}

// Start starts the server and waits until it accepts connections. fsync is off: no fault here
// crashes the host PostgreSQL runs on, and the machine is shared. max_connections leaves room
// for every role's pool (20 each) when the roles run as separate processes.
func (p *Postgres) Start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off", p.Port, p.sockDir)
	return run(p.tools.command(ctx, "pg_ctl", "-D", p.dataDir, "-l", p.logFile, "-w", "-t", "60", "-o", opts, "start"))
}

// Stop stops the server: mode "fast" (disconnect everyone, shut down cleanly) or "immediate".
func (p *Postgres) Stop(ctx context.Context, mode string) error {
	return run(p.tools.command(ctx, "pg_ctl", "-D", p.dataDir, "-m", mode, "-w", "-t", "60", "stop"))
}

// URL is the address of one of its databases.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// admin connects to the maintenance database; it stays writable whatever the server's default.
func (p *Postgres) admin(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.URL("postgres"))
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "off"
	cfg.ConnectTimeout = 5 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("private PostgreSQL: %w", err)
	}
	return conn, nil
}

// TerminateBackends ends every connection to the application's database and says how many.
func (p *Postgres) TerminateBackends(ctx context.Context) (int, error) {
	conn, err := p.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, appDatabase).Scan(&n)
	return n, err
}

// SetReadOnly makes every new transaction read-only (or not), as a failover to a standby or a
// full disk does, and ends the existing sessions so that they pick the setting up.
func (p *Postgres) SetReadOnly(ctx context.Context, on bool) error {
	conn, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	stmt := "ALTER SYSTEM RESET default_transaction_read_only"
	if on {
		stmt = "ALTER SYSTEM SET default_transaction_read_only = on"
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	if on {
		time.Sleep(100 * time.Millisecond) // the reload reaches the backends asynchronously
		_, err = p.TerminateBackends(ctx)
	}
	return err
}
