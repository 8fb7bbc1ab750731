package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/loadtest"
)

func loadtestCommand() *cobra.Command {
	var (
		cfg             loadtest.Config
		runs            int
		backends        string
		jsonOut, svgOut string
		urls            string
		adminDBURL      string
		redisURL        string
		quiet           bool
	)
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Drive a flash sale against the real HTTP API and verify the outcome",
		Long: `Creates a sale (stock --stock, per-user limit --limit), creates and logs in --users users,
each with its own client IP through X-Forwarded-For, then fires one burst (every user's purchase
released at once) or --rate purchases per second for --duration. Afterwards it waits for the
queue to drain and verifies, from the API and PostgreSQL: units sold == min(stock, units
demanded), one order row per 202, nobody above the limit, remaining == stock - sold, no
duplicate idempotency keys. Reports throughput, latency p50/p90/p99/p99.9/max (HDR histogram),
status codes, peak PostgreSQL connections in use against the pool, and when the last order
became durable.

--url names a running system: one API node, or several of one system, comma-separated (users,
and so their purchases, take them in turn; the report counts each node's requests and 202s).
Without --url it starts the system itself (flashsale all, as a child process, on a fresh
database and Redis prefix, believing X-Forwarded-For from 127.0.0.1) once per --backends entry
(INVENTORY_BACKEND: redis, postgres) and prints them side by side.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !quiet {
				cfg.Progress = os.Stderr
			}
			var sums []loadtest.Summary
			targets := strings.Split(backends, ",")
			if urls != "" {
				targets = []string{""}
				for u := range strings.SplitSeq(urls, ",") {
					if u = strings.TrimSpace(u); u != "" {
						cfg.URLs = append(cfg.URLs, strings.TrimRight(u, "/"))
					}
				}
			}
			for _, backend := range targets {
				c := cfg
				var target *loadtest.Target
				if backend != "" {
					bin, err := os.Executable()
					if err != nil {
						return err
					}
					if c.AdminEmail == "" {
						c.AdminEmail, c.AdminPassword = "admin@load.test", "load-admin-password"
					}
					target, err = loadtest.Spawn(ctx, loadtest.SpawnConfig{
						Binary: bin, Backend: backend, AdminDBURL: adminDBURL, RedisURL: redisURL,
						AdminEmail: c.AdminEmail, AdminPassword: c.AdminPassword, PoolSize: c.PoolSize, LogDir: os.TempDir(),
					})
					if err != nil {
						return err
					}
					c.URLs, c.DatabaseURL, c.Label = []string{target.URL}, target.DatabaseURL, backend
				}
				reports, err := runTarget(ctx, c, runs, cmd)
				if target != nil {
					target.Stop()
				}
				if err != nil {
					return err
				}
				sums = append(sums, loadtest.Summarise(c.Label, reports))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out)
			loadtest.PrintComparison(out, sums)
			if jsonOut != "" {
				if err := loadtest.WriteJSON(jsonOut, sums); err != nil {
					return err
				}
			}
			if svgOut != "" {
				var last []loadtest.Report
				for _, s := range sums {
					last = append(last, s.Reports[len(s.Reports)-1])
				}
				if err := loadtest.WriteSVG(svgOut, last); err != nil {
					return err
				}
			}
			for _, s := range sums {
				if s.CorrectRuns != s.Runs {
					return fmt.Errorf("%s: %d of %d runs were not correct", s.Label, s.Runs-s.CorrectRuns, s.Runs)
				}
			}
			return nil
		},
	}
	def := config.Defaults()
	f := cmd.Flags()
	f.StringVar(&urls, "url", "", "API of a running system (default: start one per --backends); several API nodes of one system comma-separated: users, and their purchases, take them in turn")
	f.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL of the running system (with --url): the server itself, not a pgBouncer")
	f.StringVar(&cfg.AdminEmail, "admin-email", os.Getenv("ADMIN_EMAIL"), "admin of the running system (with --url)")
	f.StringVar(&cfg.AdminPassword, "admin-password", os.Getenv("ADMIN_PASSWORD"), "its password")
	f.StringVar(&backends, "backends", "redis", "systems to start and compare: redis, postgres or redis,postgres")
	f.StringVar(&adminDBURL, "admin-database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "where started systems get their databases")
	f.StringVar(&redisURL, "redis-url", def.RedisURL, "Redis for started systems")
	f.IntVar(&cfg.Users, "users", 10000, "users, each with its own client IP")
	f.IntVar(&cfg.Stock, "stock", 1000, "units on sale")
	f.IntVar(&cfg.Limit, "limit", 1, "per-user limit")
	f.IntVar(&cfg.Quantity, "quantity", 1, "units per purchase")
	f.IntVar(&cfg.Shards, "shards", 0, "stock shards of the sale (its shards field; default: the system's, one)")
	f.StringVar(&cfg.Mode, "mode", "burst", "burst (every purchase at once), rate (open loop) or connections (closed loop, as wrk)")
	f.IntVar(&cfg.Rate, "rate", 5000, "purchases per second (rate mode)")
	f.IntVar(&cfg.Connections, "connections", 200, "clients, each sending its next purchase when the last is answered (connections mode)")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send (rate and connections modes)")
	f.StringSliceVar(&cfg.CPUProcesses, "cpu", []string{"flashsale", "redis-server", "postgres"},
		"process names whose CPU time is reported per 1,000 requests (from /proc; the generator itself left out; empty: none)")
	f.IntVar(&cfg.Conns, "conns", 0, "connections the generator opens (default: one per user up to 10,000; rate: rate/10)")
	f.IntVar(&cfg.PoolSize, "pool-size", int(def.DBMaxConns), "DB_MAX_CONNS of the target, for the connection report")
	f.IntVar(&runs, "runs", 1, "runs per target; the summary gives min/median/max")
	f.StringVar(&jsonOut, "json", "", "write the results as JSON to this file")
	f.StringVar(&svgOut, "svg", "", "write a chart of latency over time (last run per target) to this SVG file")
	f.BoolVar(&quiet, "quiet", false, "no progress output")
	var waitingRoom bool
	f.BoolVar(&waitingRoom, "waiting-room", false, "a sale with a waiting room: every user joins before the start, keeps a WebSocket open, "+
		"buys once admitted; verified: exactly the stock sold, nobody admitted beyond what the stock serves, admission order independent "+
		"of join time (Spearman), every waiting user told queue:closed within 1 s of the sell-out (sets --mode room)")
	f.IntVar(&cfg.AdmitRate, "admit-rate", 500, "the waiting room's admitPerSecond (--waiting-room)")
	f.BoolVar(&cfg.AutoRate, "auto-rate", false, "the waiting room finds its rate itself, --admit-rate its ceiling (--waiting-room)")
	f.DurationVar(&cfg.AdmissionTTL, "admission-ttl", time.Minute, "the waiting room's admissionTtl (--waiting-room)")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if waitingRoom {
			cfg.Mode = "room"
		}
		return nil
	}
	return cmd
}

func runTarget(ctx context.Context, cfg loadtest.Config, runs int, cmd *cobra.Command) ([]loadtest.Report, error) {
	r, err := loadtest.NewRunner(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var reports []loadtest.Report
	for i := range runs {
		rep, err := r.Run(ctx)
		if err != nil {
			return reports, fmt.Errorf("run %d: %w", i+1, err)
		}
		loadtest.PrintRun(cmd.ErrOrStderr(), rep)
		reports = append(reports, rep)
	}
	return reports, nil
}
