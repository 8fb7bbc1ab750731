package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flashsale/flashsale/internal/chaos"
)

func chaosCommand() *cobra.Command {
	o := chaos.Defaults()
	var (
		faults   string
		list     bool
		short    bool
		jsonOut  string
		markdown bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Inject faults (PostgreSQL, Redis, broker, API node) under load and count every broken invariant",
		Long: `For each fault (--list shows them): starts private PostgreSQL (initdb, pg_ctl; as the
--pg-user when run as root, since initdb refuses root) and Redis (redis-server) on free loopback
ports, starts the system as child processes of this binary, creates a sale and its users, drives
a bounded load over the HTTP API (100 purchases/s, or a 5,000-user burst against stock 500),
injects the fault, and once it has cleared polls until every invariant holds, for at most
--converge-timeout. It checks, with the load test's verifier and the database: no accepted order
without a confirmed row (lost), no units beyond the stock (oversold), no second order for one
idempotency key, nobody above the limit, remaining stock == stock - sold, and each event applied
exactly once by each consumer group (email through a local SMTP sink, analytics, inventory-sync).

Prints a table (fault, accepted, rows, lost, oversold, ..., time to converge) and the details,
and exits non-zero on any violation. Rows run one at a time, each on fresh servers. --short runs
the quick subset (about a minute). docs/reliability.md has the measured table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if list {
				chaos.ListFaults(cmd.OutOrStdout())
				return nil
			}
			if short {
				applyShort(cmd.Flags().Changed, &o)
			}
			if faults != "" {
				o.Faults = strings.Split(faults, ",")
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			o.Bin = bin
			if !quiet {
				o.Progress = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rows, runErr := chaos.Run(ctx, o)
			out := cmd.OutOrStdout()
			if len(rows) > 0 {
				chaos.PrintDetails(cmd.ErrOrStderr(), rows)
				fmt.Fprintln(out)
				if markdown {
					chaos.PrintMarkdown(out, rows)
				} else {
					chaos.PrintTable(out, rows)
				}
			}
			if jsonOut != "" {
				if err := chaos.WriteJSON(jsonOut, rows); err != nil {
					return err
				}
			}
			if runErr != nil {
				return runErr
			}
			violated := 0
			for _, r := range rows {
				if r.Violated() {
					violated++
				}
			}
			if violated > 0 {
				return fmt.Errorf("%d of %d faults broke an invariant or could not be run", violated, len(rows))
			}
			return nil
		},
	}
	all, shortSet := chaos.FaultNames()
	f := cmd.Flags()
	f.StringVar(&faults, "faults", "", "comma-separated faults to run (default: all): "+strings.Join(all, ","))
	f.BoolVar(&list, "list", false, "list the faults and how each is injected")
	f.BoolVar(&short, "short", false, "the quick subset ("+strings.Join(shortSet, ", ")+") with short durations, "+
		"unless set by other flags: --rate 50 --lead 2s --trail 2s --terminate-for 3s --readonly-for 5s --converge-timeout 30s --settle 2s")
	f.StringVar(&o.WorkDir, "work-dir", "", "where the servers' data and the logs go (default: a new temporary directory)")
	f.StringVar(&o.PGBin, "pg-bin", "", "directory of initdb and pg_ctl (default: the newest /usr/lib/postgresql/*/bin, else PATH)")
	f.StringVar(&o.PGUser, "pg-user", o.PGUser, "user to run PostgreSQL as when this runs as root")
	f.StringVar(&o.RedisBin, "redis-server", o.RedisBin, "redis-server binary")
	f.StringVar(&o.Durability, "durability", "none", "REDIS_DURABILITY of the system: none, aof (the private Redis fsyncs every write) or replica (every row gets a replica)")
	f.StringArrayVar(&o.Env, "env", nil, "extra KEY=value setting for the system under test (repeatable)")
	f.IntVar(&o.Rate, "rate", o.Rate, "purchases per second of the rate load")
	f.IntVar(&o.BurstUsers, "burst-users", o.BurstUsers, "users of the burst load (one purchase each)")
	f.IntVar(&o.BurstStock, "burst-stock", o.BurstStock, "stock of the burst's sale")
	f.IntVar(&o.RoomUsers, "room-users", o.RoomUsers, "users of the waiting-room load (each joins, waits, buys once admitted)")
	f.IntVar(&o.RoomStock, "room-stock", o.RoomStock, "stock of the waiting-room load's sale (limit 1)")
	f.IntVar(&o.RoomRate, "room-rate", o.RoomRate, "admitPerSecond of the waiting-room load's sale")
	f.IntVar(&o.Shards, "shards", 0, "stock shards of every row's sale (its shards field; default one)")
	f.DurationVar(&o.Lead, "lead", o.Lead, "rate load before the fault")
	f.DurationVar(&o.Trail, "trail", o.Trail, "rate load after the fault clears")
	f.DurationVar(&o.PGStopFor, "pg-stop-for", o.PGStopFor, "pg-stop: how long PostgreSQL stays down")
	f.DurationVar(&o.TerminateFor, "terminate-for", o.TerminateFor, "pg-terminate: how long backends keep being terminated")
	f.DurationVar(&o.TerminateEvery, "terminate-every", o.TerminateEvery, "pg-terminate: interval between terminations")
	f.DurationVar(&o.ReadOnlyFor, "readonly-for", o.ReadOnlyFor, "pg-readonly: how long the database is read-only")
	f.DurationVar(&o.RedisRestartAt, "redis-restart-at", o.RedisRestartAt, "redis-restart*: when, into the burst, Redis restarts")
	f.DurationVar(&o.AOFLoss, "aof-loss", o.AOFLoss, "redis-aof-crash: how much of the AOF's tail the crash loses")
	f.DurationVar(&o.RollbackBy, "rollback-by", o.RollbackBy, "redis-rollback: age of the restored snapshot")
	f.DurationVar(&o.BrokerDownFor, "broker-down-for", o.BrokerDownFor, "broker-kill: time between the kill and the restart")
	f.DurationVar(&o.APIKillAt, "api-kill-at", o.APIKillAt, "api-kill: when, into the burst, node A is killed")
	f.DurationVar(&o.InflightWait, "inflight-wait", o.InflightWait, "retries: how long a key answered 'in flight' is retried")
	f.DurationVar(&o.ConvergeTimeout, "converge-timeout", o.ConvergeTimeout, "longest wait, after the fault clears, for every invariant to hold")
	f.DurationVar(&o.Settle, "settle", o.Settle, "how long the invariants must keep holding to count as converged")
	f.StringVar(&jsonOut, "json", "", "also write the rows as JSON to this file")
	f.BoolVar(&markdown, "markdown", false, "print the table as Markdown")
	f.BoolVar(&quiet, "quiet", false, "no progress lines")
	return cmd
}

// applyShort sets the quick subset's values for every flag the caller did not set.
func applyShort(changed func(flag string) bool, o *chaos.Options) {
	s := chaos.ShortDefaults()
	set := func(name string, apply func()) {
		if !changed(name) {
			apply()
		}
	}
	set("faults", func() { o.Faults = s.Faults })
	set("rate", func() { o.Rate = s.Rate })
	set("lead", func() { o.Lead = s.Lead })
	set("trail", func() { o.Trail = s.Trail })
	set("terminate-for", func() { o.TerminateFor = s.TerminateFor })
	set("readonly-for", func() { o.ReadOnlyFor = s.ReadOnlyFor })
	set("converge-timeout", func() { o.ConvergeTimeout = s.ConvergeTimeout })
	set("settle", func() { o.Settle = s.Settle })
}
