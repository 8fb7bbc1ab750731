package wiring

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	asynqadapter "github.com/flashsale/flashsale/internal/adapters/asynq"
	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/adapters/metrics"
	"github.com/flashsale/flashsale/internal/adapters/ws"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/ports"
)

// scrapeTimeout bounds what a scrape-time collector may spend on the backends.
const scrapeTimeout = 2 * time.Second

// Observe connects what every role exposes at scrape time to the metrics: the connection
// pools, the Asynq queues, the consumers of the process.
var Observe = fx.Options(
	fx.Invoke(func(pool *pgxpool.Pool, rdb goredis.UniversalClient, prom *metrics.Prometheus) {
		redisMax := 0
		switch r := rdb.(type) {
		case *goredis.Client:
			redisMax = r.Options().PoolSize
		case *goredis.ClusterClient:
			redisMax = r.Options().PoolSize // per node
		}
		prom.WatchPools(map[string]func() metrics.PoolState{
			"postgres": func() metrics.PoolState {
				s := pool.Stat()
				return metrics.PoolState{InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()), Max: int(s.MaxConns()),
					Waits: uint64(max(s.EmptyAcquireCount(), 0)), Timeouts: uint64(max(s.CanceledAcquireCount(), 0)),
					WaitTime: s.EmptyAcquireWaitTime()}
			},
			"redis": func() metrics.PoolState {
				s := rdb.PoolStats()
				inUse := max(int(s.TotalConns)-int(s.IdleConns), 0)
				return metrics.PoolState{InUse: inUse, Idle: int(s.IdleConns), Max: redisMax,
					Waits: uint64(s.WaitCount), Timeouts: uint64(s.Timeouts), WaitTime: time.Duration(s.WaitDurationNs)}
			},
		})
	}),
	fx.Invoke(func(q *asynqadapter.Queue, c config.Config, prom *metrics.Prometheus) {
		prom.ControlOrderQueue(c.OrderQueue)
		prom.WatchQueues(func() ([]metrics.QueueState, error) {
			stats, err := q.Stats(c.OrderQueue, c.SaleEventsQueue)
			out := make([]metrics.QueueState, 0, len(stats))
			for _, s := range stats {
				out = append(out, metrics.QueueState{Queue: s.Queue, Pending: s.Pending, Active: s.Active,
					Scheduled: s.Scheduled, Retry: s.Retry, Archived: s.Archived, OldestPending: s.Latency})
			}
			return out, err
		})
	}),
	fx.Invoke(func(consumers watchedConsumers, prom *metrics.Prometheus) {
		prom.WatchConsumers(func() []metrics.ConsumerState {
			var out []metrics.ConsumerState
			for _, w := range consumers.All {
				cons := w.get()
				if cons == nil {
					continue
				}
				st := metrics.ConsumerState{Group: cons.Group(), DeadLettered: cons.DeadLettered()}
				for _, l := range cons.Lag() {
					st.Partitions = append(st.Partitions, metrics.PartitionLag{Topic: l.Topic, Partition: l.Partition, Lag: l.Lag})
				}
				out = append(out, st)
			}
			return out
		})
	}),
)

// timedPurchases observes how long each call of the purchase store takes.
type timedPurchases struct {
	ports.PurchaseStore
	prom *metrics.Prometheus
}

// Unwrap is the store it times.
func (t timedPurchases) Unwrap() ports.PurchaseStore { return t.PurchaseStore }

func (t timedPurchases) Purchase(ctx context.Context, p ports.Purchase) (ports.PurchaseOutcome, error) {
	start := time.Now()
	out, err := t.PurchaseStore.Purchase(ctx, p)
	t.prom.ReservationTook(time.Since(start))
	return out, err
}

// watchedConsumer holds a consumer built in its module's OnStart-time invoke, for the metrics.
type watchedConsumer struct {
	c atomic.Pointer[kafka.Consumer]
}

func (w *watchedConsumer) get() *kafka.Consumer { return w.c.Load() }

type watchedConsumers struct {
	fx.In
	All []*watchedConsumer `group:"consumers"`
}

// observeHTTP is what the API role exposes: its requests, its WebSocket hub.
func observeHTTP(prom *metrics.Prometheus, hub *ws.Hub) error {
	ops, err := httpadapter.Operations()
	if err != nil {
		return err
	}
	prom.ExposeOperations(ops, httpadapter.PurchaseOutcomes)
	prom.WatchLive(func() metrics.LiveState {
		return metrics.LiveState{Connections: hub.Connections(), Sent: uint64(max(hub.Sent(), 0)), Dropped: uint64(max(hub.Dropped(), 0))}
	})
	return nil
}

// watchSales exposes the stock of the sales running now (the worker role: one series per sale
// whatever the number of API nodes).
func watchSales(prom *metrics.Prometheus, sales ports.SaleRepository, inv ports.InventoryStore, log *slog.Logger) {
	prom.WatchSales(func() []metrics.SaleState {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		refs, err := sales.LiveSales(ctx, time.Now())
		if err != nil {
			log.DebugContext(ctx, "live sales not read for the metrics", "err", err)
			return nil
		}
		byTenant := map[uuid.UUID][]uuid.UUID{}
		for _, r := range refs {
			byTenant[r.TenantID] = append(byTenant[r.TenantID], r.SaleID)
		}
		var out []metrics.SaleState
		for tenant, ids := range byTenant {
			invs, err := inv.Inventories(ctx, tenant, ids)
			if err != nil {
				log.DebugContext(ctx, "inventories not read for the metrics", "err", err)
				continue
			}
			for id, i := range invs {
				out = append(out, metrics.SaleState{TenantID: tenant, SaleID: id, Remaining: i.Remaining, Sold: i.Sold})
			}
		}
		return out
	})
}
