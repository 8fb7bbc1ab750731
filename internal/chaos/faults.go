package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Loads a fault runs under.
const (
	loadRate  = "rate"  // Options.Rate purchases per second, for Lead + the fault + Trail
	loadBurst = "burst" // Options.BurstUsers users buy at once, stock Options.BurstStock, limit 1
	// Options.RoomUsers users join the sale's waiting room before the start, and buy once
	// admitted (Options.RoomRate a second), stock Options.RoomStock, limit 1.
	loadRoom = "room"
)

// roomAdmissionTTL is the admissionTtl of the room load's sale.
const roomAdmissionTTL = 20 * time.Second

// fault is one row of the table: how the system is laid out, the load, and the injection.
type fault struct {
	name  string
	title string // what the row shows, for the table's legend and --list
	how   string // how the fault is injected
	short bool   // in the --short subset
	// layout of the system (layoutAll or layoutSplit), and API nodes in the split layout.
	layout   string
	apiNodes int
	// redis persistence of the primary; replica: a second server replicating it; cluster: a
	// Redis Cluster of 3 masters and 3 replicas instead, each with that persistence.
	redis   string
	replica bool
	cluster bool
	load    string
	// window is how long the fault lasts in a rate load (the load runs Lead + window + Trail).
	window func(o Options) time.Duration
	// setup runs once the system is ready, before the load (e.g. stop a consumer group).
	setup func(ctx context.Context, r *rowRun) error
	// inject runs alongside the load, from its start (t0): it waits for its moment, injects
	// the fault, clears it, and returns when the fault is over.
	inject func(ctx context.Context, r *rowRun, t0 time.Time) error
	// after runs once the load is over (retries with the same keys).
	after func(ctx context.Context, r *rowRun) error
}

func none(Options) time.Duration { return 0 }

// faults is the catalogue, in the table's order.
var faults = []fault{
	{
		name: "pg-stop", title: "PostgreSQL stopped, then started",
		how:    "`pg_ctl stop -m fast` Lead into a 100/s load; `pg_ctl start` after --pg-stop-for (30 s)",
		layout: layoutAll, redis: persistNone, load: loadRate,
		window: func(o Options) time.Duration { return o.PGStopFor },
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			r.mark("pg_ctl stop -m fast")
			if err := r.pg.Stop(ctx, "fast"); err != nil {
				return err
			}
			sleepUntil(ctx, t0.Add(r.opts.Lead+r.opts.PGStopFor))
			r.mark("pg_ctl start")
			return r.pg.Start(ctx)
		},
	},
	{
		name: "pg-terminate", title: "every backend of the app terminated, repeatedly", short: true,
		how: "`SELECT pg_terminate_backend(pid)` of every connection to the app's database, every " +
			"--terminate-every (1 s) for --terminate-for (10 s), during a 100/s load",
		layout: layoutAll, redis: persistNone, load: loadRate,
		window: func(o Options) time.Duration { return o.TerminateFor },
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			end := t0.Add(r.opts.Lead + r.opts.TerminateFor)
			total, rounds := 0, 0
			for time.Now().Before(end) && ctx.Err() == nil {
				n, err := r.pg.TerminateBackends(ctx)
				if err != nil {
					return err
				}
				total += n
				rounds++
				sleepUntil(ctx, time.Now().Add(r.opts.TerminateEvery))
			}
			r.mark(fmt.Sprintf("%d backends terminated in %d rounds", total, rounds))
			return nil
		},
	},
	{
		name: "pg-readonly", title: "database read-only", short: true,
		how: "`ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf()`, then the " +
			"app's sessions terminated so they pick it up; reset after --readonly-for (20 s), during a 100/s load",
		layout: layoutAll, redis: persistNone, load: loadRate,
		window: func(o Options) time.Duration { return o.ReadOnlyFor },
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			r.mark("read-only on")
			if err := r.pg.SetReadOnly(ctx, true); err != nil {
				return err
			}
			sleepUntil(ctx, t0.Add(r.opts.Lead+r.opts.ReadOnlyFor))
			r.mark("read-only off")
			return r.pg.SetReadOnly(ctx, false)
		},
	},
	{
		name: "redis-restart", title: "Redis restarted without persistence mid-burst",
		how: "redis-server (no RDB, no AOF) killed (SIGKILL) and started empty --redis-restart-at " +
			"(0.9 s) into a 5,000-user burst, stock 500; a shopper answered 401 (session gone) logs in again " +
			"and sends the same purchase",
		layout: layoutAll, redis: persistNone, load: loadBurst, window: none,
		inject: restartRedisEmpty,
	},
	{
		name: "redis-restart-retry", title: "the same, then every buyer retries the same key",
		how: "as redis-restart; as soon as Redis is back every purchase answered 202 so far is sent again " +
			"with the same Idempotency-Key (a reload: it must replay the first answer), while the burst goes on; " +
			"after the burst every purchase that got no answer or a 5xx is sent again with its key",
		layout: layoutAll, redis: persistNone, load: loadBurst, window: none,
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			if err := restartRedisEmpty(ctx, r, t0); err != nil {
				return err
			}
			var accepted []*purchase
			for _, p := range r.d.snapshot() {
				if len(p.orderIDs()) > 0 {
					accepted = append(accepted, p)
				}
			}
			r.background(func() {
				n := r.d.resend(ctx, -1, r.opts.InflightWait, func(p *purchase) bool { return slices.Contains(accepted, p) })
				r.mark(fmt.Sprintf("%d purchases answered 202 before the restart sent again with the same key", n))
			})
			return nil
		},
		after: func(ctx context.Context, r *rowRun) error {
			n := r.d.resend(ctx, -1, r.opts.InflightWait, func(p *purchase) bool { return p.failed() })
			r.mark(fmt.Sprintf("%d purchases without an answer or with a 5xx sent again with the same key", n))
			return nil
		},
	},
	{
		name: "redis-aof-crash", title: "Redis host crash: AOF everysec loses its last second",
		how: "redis-server with `appendonly yes`, `appendfsync everysec`, killed (SIGKILL) Lead into a " +
			"100/s load; its append-only file cut back to the size it had --aof-loss (1 s) earlier, " +
			"as a host crash loses the unsynced second; started again from it",
		layout: layoutAll, redis: persistAOF, load: loadRate, window: none,
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sizes, err := r.redis.sampleAOF(ctx)
			if err != nil {
				return err
			}
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			r.redis.Kill()
			killed := time.Now()
			keep := sizes.sizeAt(killed.Add(-r.opts.AOFLoss))
			fi, err := os.Stat(sizes.path)
			if err != nil {
				return err
			}
			if err := os.Truncate(sizes.path, keep); err != nil {
				return err
			}
			r.mark(fmt.Sprintf("kill -9; AOF cut from %d to %d bytes", fi.Size(), keep))
			return r.redis.Start(ctx)
		},
	},
	{
		name: "redis-failover", title: "Redis primary lost, replica promoted",
		how: "roles as processes; a replica (second redis-server, `--replicaof` the primary) in sync; " +
			"Lead into a 100/s load the primary is killed (SIGKILL), the replica promoted (`REPLICAOF NO ONE`) " +
			"and every role but the broker restarted (SIGTERM, then started) with REDIS_URL pointing at it",
		layout: layoutSplit, apiNodes: 1, redis: persistNone, replica: true, load: loadRate, window: none,
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			r.mark("primary killed (SIGKILL)")
			r.redis.Kill()
			if _, err := r.replica.Do(ctx, "REPLICAOF", "NO", "ONE"); err != nil {
				return err
			}
			r.mark("replica promoted (REPLICAOF NO ONE)")
			if err := r.sys.Restart(ctx, 60*time.Second, "REDIS_URL="+r.replica.URL()); err != nil {
				return err
			}
			r.mark("system restarted on the new primary")
			return nil
		},
	},
	{
		name: "redis-cluster-failover", title: "Redis Cluster: the master of the sale's slot lost mid-burst",
		how: "a Redis Cluster (3 masters, 3 replicas, node timeout 1 s); --redis-restart-at (0.9 s) into a " +
			"5,000-user burst (stock 500) the master holding the sale's slot is killed (SIGKILL), its replica " +
			"is promoted by the cluster, then the killed node is started again (it rejoins as a replica, " +
			"empty); every purchase that got no answer or a 5xx is sent again with the same key",
		layout: layoutAll, redis: persistNone, cluster: true, load: loadBurst, window: none,
		setup: func(ctx context.Context, r *rowRun) error {
			if r.target = r.cluster.masterOf(ctx, "*"+r.d.saleID.String()+"}:inv"); r.target == nil {
				return errors.New("no master holds the sale's inventory")
			}
			return nil
		},
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.RedisRestartAt))
			master := r.target
			master.Kill()
			r.mark(fmt.Sprintf("master of the sale's slot (port %d) killed (SIGKILL)", master.Port))
			if err := r.cluster.waitHealthy(ctx, master); err != nil {
				return err
			}
			if promoted := r.cluster.masterOf(ctx, "*"+r.d.saleID.String()+"}:inv"); promoted != nil {
				r.mark(fmt.Sprintf("replica promoted (port %d)", promoted.Port))
			}
			if err := master.Start(ctx); err != nil {
				return err
			}
			if err := r.cluster.waitHealthy(ctx, nil); err != nil {
				return err
			}
			r.mark("killed node started again, a replica in sync")
			return nil
		},
		after: func(ctx context.Context, r *rowRun) error {
			n := r.d.resend(ctx, 0, r.opts.InflightWait, func(p *purchase) bool { return p.failed() })
			r.mark(fmt.Sprintf("%d unanswered purchases sent again", n))
			return nil
		},
	},
	{
		name: "redis-rollback", title: "Redis restored from an older snapshot",
		how: "redis-server with AOF; Lead into a 100/s load a snapshot is taken (`SAVE`, the RDB copied); " +
			"--rollback-by (10 s) later the server is killed and started from that snapshot, as restoring " +
			"a backup does",
		layout: layoutAll, redis: persistAOF, load: loadRate,
		window: func(o Options) time.Duration { return o.RollbackBy },
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			snap := r.dir + "/snapshot.rdb"
			if err := r.redis.Snapshot(ctx, snap); err != nil {
				return err
			}
			r.mark("snapshot")
			sleepUntil(ctx, t0.Add(r.opts.Lead+r.opts.RollbackBy))
			if err := r.redis.RestoreSnapshot(ctx, snap); err != nil {
				return err
			}
			r.mark("restored")
			return nil
		},
	},
	{
		name: "broker-kill", title: "Kafka broker killed and restarted, roles as processes",
		how: "roles as separate processes (flashsale broker, serve, worker, consumer ×3); Lead into a 100/s " +
			"load the broker is killed (SIGKILL) and started again on its port --broker-down-for (1 s) later " +
			"(the embedded broker keeps everything in memory)",
		layout: layoutSplit, apiNodes: 1, redis: persistNone, load: loadRate,
		window: func(o Options) time.Duration { return o.BrokerDownFor },
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			r.mark("broker killed (SIGKILL)")
			r.sys.Kill("broker")
			sleepUntil(ctx, t0.Add(r.opts.Lead+r.opts.BrokerDownFor))
			return r.startBroker(ctx)
		},
	},
	{
		name: "broker-restart-behind", title: "broker restarted while a consumer group is behind",
		how: "roles as processes; the analytics consumer is stopped before the load, so its group falls " +
			"behind; Lead into a 100/s load the broker is restarted (SIGTERM, started again), then the " +
			"analytics consumer is started again",
		layout: layoutSplit, apiNodes: 1, redis: persistNone, load: loadRate, window: none,
		setup: func(_ context.Context, r *rowRun) error {
			r.sys.Stop("consumer-analytics")
			return nil
		},
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.Lead))
			r.sys.Stop("broker")
			r.mark("broker stopped")
			if err := r.startBroker(ctx); err != nil {
				return err
			}
			if err := r.sys.Start(ctx, "consumer-analytics"); err != nil {
				return err
			}
			r.mark("analytics consumer started")
			return nil
		},
	},
	{
		name: "api-kill", title: "an API node killed mid-burst",
		how: "roles as processes with two API nodes; a 5,000-user burst (stock 500) split across them; " +
			"node A killed (SIGKILL) --api-kill-at (0.5 s) into it; every purchase that got no answer or a " +
			"5xx is sent again to node B with the same key (retried while the key is in flight, up to " +
			"--inflight-wait)",
		layout: layoutSplit, apiNodes: 2, redis: persistNone, load: loadBurst, window: none,
		inject: func(ctx context.Context, r *rowRun, t0 time.Time) error {
			sleepUntil(ctx, t0.Add(r.opts.APIKillAt))
			r.mark("serve-a killed (SIGKILL)")
			r.sys.Kill("serve-a")
			r.verifyNode = 1
			return nil
		},
		after: func(ctx context.Context, r *rowRun) error {
			n := r.d.resend(ctx, 1, r.opts.InflightWait, func(p *purchase) bool { return p.failed() })
			r.mark(fmt.Sprintf("%d unanswered purchases sent again to serve-b", n))
			return nil
		},
	},
	{
		name: "room-api-kill", title: "a sale with a waiting room: an API node killed while it admits",
		how: "roles as processes with two API nodes; a sale with a waiting room (admitPerSecond --room-rate, 250; " +
			"admissions of 20 s); --room-users (2,000) shoppers join it before the start, half on each node, poll " +
			"their place every 0.5 s and buy one unit (stock --room-stock, 500, limit 1) once admitted; node A " +
			"killed (SIGKILL) --api-kill-at (0.5 s) after the start: its shoppers go on with node B, a purchase " +
			"without an answer sent again there with its key. Also checked: every accepted order spent its buyer's " +
			"admission (its key is on the room's record of that admission), and no live admission is beyond " +
			"what the remaining stock serves",
		layout: layoutSplit, apiNodes: 2, redis: persistNone, load: loadRoom, window: none,
		inject: func(ctx context.Context, r *rowRun, _ time.Time) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-r.d.roomStarted:
			}
			sleepUntil(ctx, r.d.began.Add(r.opts.APIKillAt))
			r.mark("serve-a killed (SIGKILL)")
			r.sys.Kill("serve-a")
			r.verifyNode = 1
			return nil
		},
		after: func(ctx context.Context, r *rowRun) error {
			n := r.d.resend(ctx, 1, r.opts.InflightWait, func(p *purchase) bool { return p.failed() || p.last().problem == problemInFlight })
			r.mark(fmt.Sprintf("%d purchases without an answer, with a 5xx or in flight sent again to serve-b", n))
			return nil
		},
	},
}

func restartRedisEmpty(ctx context.Context, r *rowRun, t0 time.Time) error {
	sleepUntil(ctx, t0.Add(r.opts.RedisRestartAt))
	r.mark("Redis killed (SIGKILL)")
	r.redis.Kill()
	if err := r.redis.Start(ctx); err != nil {
		return err
	}
	r.mark("Redis started again, empty")
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

// startBroker starts the broker process again on its port and waits for it.
func (r *rowRun) startBroker(ctx context.Context) error {
	if err := r.sys.Start(ctx, "broker"); err != nil {
		return err
	}
	if err := waitPort(ctx, r.brokerAddr(), 30*time.Second); err != nil {
		return err
	}
	r.mark("broker started")
	return nil
}

// FaultNames lists the faults in the table's order, and those of the --short subset.
func FaultNames() (all, short []string) {
	for _, f := range faults {
		all = append(all, f.name)
		if f.short {
			short = append(short, f.name)
		}
	}
	return all, short
}

// ListFaults writes the catalogue: name, what, how.
func ListFaults(w io.Writer) {
	for _, f := range faults {
		mark := ""
		if f.short {
			mark = " [short]"
		}
		fmt.Fprintf(w, "%-22s %s%s\n%22s   %s\n", f.name, f.title, mark, "", f.how)
	}
}
