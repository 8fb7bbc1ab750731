// Package wiring assembles Flashsale's roles with uber-go/fx: one module per adapter, and the
// role options that `flashsale serve|worker|all` start. Constructors elsewhere stay plain Go.
package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	asynqadapter "github.com/flashsale/flashsale/internal/adapters/asynq"
	"github.com/flashsale/flashsale/internal/adapters/bcrypt"
	"github.com/flashsale/flashsale/internal/adapters/dispatch"
	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
	"github.com/flashsale/flashsale/internal/adapters/jwt"
	"github.com/flashsale/flashsale/internal/adapters/livefeed"
	"github.com/flashsale/flashsale/internal/adapters/metrics"
	"github.com/flashsale/flashsale/internal/adapters/postgres"
	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/adapters/tracing"
	"github.com/flashsale/flashsale/internal/adapters/ws"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/web"
	"github.com/flashsale/flashsale/web/docs"
)

// startTimeout bounds connecting to dependencies at start.
const startTimeout = 10 * time.Second

// Config provides an already loaded configuration and the logger it describes (whose lines
// carry the trace of their context), and starts tracing when an OTLP endpoint is configured.
func Config(c config.Config) fx.Option {
	log := slog.New(tracing.LogHandler(c.Logger().Handler()))
	return fx.Options(
		fx.Supply(c),
		fx.Supply(log),
		Tracing,
		fx.WithLogger(func() fxevent.Logger {
			if c.LogLevel == "debug" {
				return &fxevent.SlogLogger{Logger: log}
			}
			return fxevent.NopLogger
		}),
	)
}

// Tracing exports the process's traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set: it
// starts first and stops last, so the spans of every other component's stop are flushed.
var Tracing = fx.Invoke(func(lc fx.Lifecycle, c config.Config) {
	var shutdown func(context.Context) error
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			var err error
			shutdown, err = tracing.Start(ctx, tracing.Config{Endpoint: c.OTLPEndpoint, Protocol: c.OTLPProtocol,
				ServiceName: c.ServiceName, InstanceID: nodeName()})
			return err
		},
		OnStop: func(ctx context.Context) error { return shutdown(ctx) },
	})
})

// Postgres provides the pool (DB_MAX_CONNS) and the repositories.
var Postgres = fx.Module("postgres",
	fx.Provide(
		func(lc fx.Lifecycle, c config.Config) (*pgxpool.Pool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			pool, err := postgres.Open(ctx, c.DatabaseURL, postgres.PoolOptions{MaxConns: c.DBMaxConns, QueryExecMode: c.DBQueryExecMode})
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(pool.Close))
			return pool, nil
		},
		fx.Annotate(postgres.NewStore,
			fx.As(fx.Self()),
			fx.As(new(ports.TenantRepository)),
			fx.As(new(ports.UserRepository)),
			fx.As(new(ports.SaleRepository)),
			fx.As(new(ports.WaitingRoomSales)),
			fx.As(new(ports.RoomAdmissionRecords)),
			fx.As(new(ports.OrderRepository)),
			fx.As(new(ports.Outbox)),
			fx.As(new(ports.OutboxRecovery)),
			fx.As(new(ports.ProcessedEvents)),
			fx.As(new(ports.SaleStatsRepository)),
			fx.As(new(ports.SaleCounterRepository)),
		),
	),
)

// Redis provides the client and the inventory, idempotency and cache stores.
var Redis = fx.Module("redis",
	fx.Provide(
		func(lc fx.Lifecycle, c config.Config) (goredis.UniversalClient, error) {
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			client, err := redisadapter.Open(ctx, c.RedisURL)
			if err != nil {
				return nil, err
			}
			if c.RedisDurability == config.DurabilityAOF {
				if err := redisadapter.CheckAOF(ctx, client); err != nil {
					_ = client.Close()
					return nil, err
				}
			}
			lc.Append(fx.StopHook(client.Close))
			return client, nil
		},
		func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Inventory {
			return redisadapter.NewInventory(rdb, c.RedisPrefix).FenceOnLoss(c.RestoreFence)
		},
		// The one ports.InventoryStore and ports.PurchaseStore (INVENTORY_BACKEND): the Lua
		// inventory, or the row-locking PostgreSQL baseline it is measured against.
		// The purchase store is timed for the metrics (flashsale_reservation_duration_seconds).
		func(c config.Config, rdb *redisadapter.Inventory, pool *pgxpool.Pool, prom *metrics.Prometheus) (ports.InventoryStore, ports.PurchaseStore) {
			if c.InventoryBackend == config.InventoryPostgres {
				pg := postgres.NewInventory(pool)
				return pg, timedPurchases{PurchaseStore: pg, prom: prom}
			}
			var wait redisadapter.Wait
			if c.RedisDurability == config.DurabilityReplica {
				wait = redisadapter.Wait{Replicas: c.RedisWaitReplicas, Timeout: c.RedisWaitTimeout}
			}
			return rdb, timedPurchases{PurchaseStore: redisadapter.NewPurchases(rdb, wait), prom: prom}
		},
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.SaleCache {
			return redisadapter.NewSaleCache(rdb, c.RedisPrefix, c.SaleCacheTTL)
		}, fx.As(new(ports.SaleCache))),
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Sessions {
			return redisadapter.NewSessions(rdb, c.RedisPrefix)
		}, fx.As(fx.Self()), fx.As(new(ports.SessionStore))),
		func(rdb goredis.UniversalClient, c config.Config, s *redisadapter.Sessions) *redisadapter.Gate {
			return redisadapter.NewGate(rdb, c.RedisPrefix, s)
		},
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Live {
			return redisadapter.NewLive(rdb, c.RedisPrefix)
		}, fx.As(fx.Self()), fx.As(new(ports.Broadcaster))),
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Nodes {
			return redisadapter.NewNodes(rdb, c.RedisPrefix)
		}, fx.As(fx.Self()), fx.As(new(ports.Nodes))),
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Rooms {
			return redisadapter.NewRooms(rdb, c.RedisPrefix)
		}, fx.As(new(ports.WaitingRoomStore))),
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Tickets {
			return redisadapter.NewTickets(rdb, c.RedisPrefix)
		}, fx.As(new(ports.TicketStore))),
		fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *redisadapter.Epoch {
			return redisadapter.NewEpoch(rdb, c.RedisPrefix)
		}, fx.As(fx.Self()), fx.As(new(ports.StoreEpoch))),
	),
)

// Queue provides the order queue (enqueueing and inspection).
var Queue = fx.Module("asynq-queue",
	// The queue shares the Redis client, which the redis module closes.
	fx.Provide(fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *asynqadapter.Queue {
		return asynqadapter.NewQueue(rdb, asynqadapter.QueueConfig{Queue: c.OrderQueue})
	}, fx.As(fx.Self()), fx.As(new(ports.OrderQueue)))),
	fx.Provide(fx.Annotate(func(rdb goredis.UniversalClient, c config.Config) *asynqadapter.Scheduler {
		return asynqadapter.NewScheduler(rdb, c.SaleEventsQueue)
	}, fx.As(new(ports.SaleScheduler)))),
	// The purchase path's queue: asynchronous once the API role starts it, inline otherwise.
	fx.Provide(func(q ports.OrderQueue, c config.Config, log *slog.Logger) *dispatch.Queue {
		return dispatch.New(q, dispatch.Config{Workers: c.DispatchWorkers, Buffer: c.DispatchBuffer, Attempts: c.DispatchAttempts,
			Recent: c.DispatchRecent, RecentMax: c.DispatchRecentMax}, log)
	}),
	fx.Provide(fx.Annotate(func(d *dispatch.Queue) ports.Dispatcher { return d }, fx.ResultTags(`name:"dispatch"`))),
)

// Security provides the token issuer and the password hasher.
var Security = fx.Module("security",
	fx.Provide(
		fx.Annotate(func(c config.Config) (*jwt.Issuer, error) {
			previous, err := c.PreviousKeys()
			if err != nil {
				return nil, err
			}
			verifying := make([]jwt.Key, len(previous))
			for i, k := range previous {
				verifying[i] = jwt.Key{ID: k.ID, Secret: []byte(k.Secret)}
			}
			return jwt.NewIssuer(jwt.Config{
				Signing: jwt.Key{ID: c.JWTKeyID, Secret: []byte(c.JWTSecret)}, Verifying: verifying,
				Issuer: c.JWTIssuer, Audience: c.JWTAudience, TTL: c.AccessTokenTTL, Leeway: 30 * time.Second,
			})
		}, fx.As(new(ports.TokenIssuer))),
		fx.Annotate(func(c config.Config) (*bcrypt.Hasher, error) { return bcrypt.NewHasher(c.BcryptCost) },
			fx.As(new(ports.PasswordHasher))),
	),
)

// Application provides the use-cases, on the ports app.Deps lists and the settings the
// configuration gives them.
var Application = fx.Module("app",
	fx.Provide(
		appDepsFromContainer(),
		func(d app.Deps, c config.Config) (*app.Application, error) {
			// Roles without Kafka, or without mail, have no publisher or mailer: their ports
			// refuse, so a use case wired by mistake fails loudly instead of dropping events.
			if d.Publisher == nil {
				d.Publisher = absent{"event publisher (the Kafka module)"}
			}
			if d.Mailer == nil {
				d.Mailer = absent{"mailer (the Mailer module)"}
			}
			if d.Broker == nil { // a real Kafka cluster keeps its log (acks=all)
				d.Broker = keepsItsLog{}
			}
			s := app.DefaultSettings()
			s.IdempotencyLease, s.IdempotencyTTL = c.IdempotencyLease, c.IdempotencyTTL
			s.ReconcileGrace = c.ReconcileGrace
			s.RefreshTTL = c.RefreshTokenTTL
			s.RelayBatch = c.RelayBatch
			s.RelayUnhealthyAfter = c.RelayUnhealthyAfter
			s.OrderAttempts, s.OrderRetryBudget = c.OrderAttempts, c.OrderRetryBudget
			s.RestoreFence = c.RestoreFence
			s.SoldOutTTL = c.SoldOutTTL
			// Its own key, derived from the token secret: a queue ticket is never a token.
			s.RoomSecret = []byte("flashsale waiting room\x00" + c.JWTSecret)
			s.RoomGrace = c.RoomHeartbeatGrace
			s.Node = nodeName()
			return app.New(d, s)
		},
	),
)

// absent stands for a port this role does not provide.
type absent struct{ what string }

func (a absent) err() error { return fmt.Errorf("this role has no %s", a.what) }

func (a absent) Publish(context.Context, []domain.Event) error { return a.err() }
func (a absent) Send(context.Context, domain.Mail) error       { return a.err() }

// keepsItsLog is a broker that never loses what it acknowledged: one incarnation forever.
type keepsItsLog struct{}

func (keepsItsLog) Incarnation(context.Context) (string, error) { return "kafka", nil }

// nodeName names this process among the API nodes: the host, and a random suffix so that a
// restarted process is a new node.
func nodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return host + "-" + uuid.NewString()[:8]
}

// optionalDeps are the fields of app.Deps a role may leave unprovided (nil): the event
// publisher, the broker watcher and the mailer exist in the roles that use them, and the clock
// is time.Now unless a test supplies one.
var optionalDeps = []string{"Publisher", "Broker", "Mailer", "Now"}

// namedDeps are the fields of app.Deps whose type another field shares, with the fx name they
// are provided under.
var namedDeps = map[string]string{"Dispatch": "dispatch"}

// appDepsFromContainer is a constructor of app.Deps whose parameters are app.Deps's own fields
// (an fx.In struct made from it), so that the use-cases' dependencies are listed once, in
// app.Deps: a port added there is asked of the container with no change here.
func appDepsFromContainer() any {
	deps := reflect.TypeFor[app.Deps]()
	optional := map[string]bool{}
	var stale []string // names app.Deps no longer has: the constructor fails with them
	for _, name := range optionalDeps {
		optional[name] = true
		if _, ok := deps.FieldByName(name); !ok {
			stale = append(stale, name)
		}
	}
	fields := []reflect.StructField{{Name: "In", Type: reflect.TypeFor[fx.In](), Anonymous: true}}
	for i := range deps.NumField() {
		f := deps.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := ""
		if optional[f.Name] {
			tag = `optional:"true"`
		}
		if name, ok := namedDeps[f.Name]; ok {
			tag = `name:"` + name + `"`
		}
		fields = append(fields, reflect.StructField{Name: f.Name, Type: f.Type, Tag: reflect.StructTag(tag)})
	}
	in := reflect.StructOf(fields)
	errType := reflect.TypeFor[error]()
	ctor := reflect.FuncOf([]reflect.Type{in}, []reflect.Type{deps, errType}, false)
	return reflect.MakeFunc(ctor, func(args []reflect.Value) []reflect.Value {
		d := reflect.New(deps).Elem()
		if len(stale) > 0 {
			err := fmt.Errorf("wiring: optionalDeps names %v, which app.Deps does not have", stale)
			return []reflect.Value{d, reflect.ValueOf(&err).Elem()}
		}
		for i := 1; i < in.NumField(); i++ {
			name := in.Field(i).Name
			d.FieldByName(name).Set(args[0].FieldByName(name))
		}
		return []reflect.Value{d, reflect.Zero(errType)}
	}).Interface()
}

// Metrics provides the Prometheus registry behind ports.Metrics.
var Metrics = fx.Provide(fx.Annotate(metrics.New, fx.As(fx.Self()), fx.As(new(ports.Metrics))))

// LiveFeed provides ports.LiveEvents on the Redis broadcaster, flushing coalesced
// inventory:updated events every LIVE_FLUSH_INTERVAL (every role changes stock).
var LiveFeed = fx.Provide(fx.Annotate(
	func(lc fx.Lifecycle, b ports.Broadcaster, inv ports.InventoryStore, sales ports.SaleRepository, c config.Config,
		log *slog.Logger) *livefeed.Feed {
		f := livefeed.New(b, inv, sales, log, nil)
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error { f.Start(c.LiveFlushInterval); return nil },
			OnStop:  f.Stop,
		})
		return f
	}, fx.As(new(ports.LiveEvents))))

// Backends is everything every role needs.
var Backends = fx.Options(Postgres, Redis, Queue, Security, Metrics, Observe, Application, LiveFeed, Pprof)

// HTTPServer is the API listening on HTTP_ADDR; Addr reports where it listens once started.
type HTTPServer struct {
	Handler http.Handler
	mu      sync.Mutex
	addr    net.Addr
}

// Addr is the bound address (useful with HTTP_ADDR=:0), nil before start.
func (s *HTTPServer) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// API is the serve role: the HTTP server, and the bootstrap of the default tenant and admin.
var API = fx.Module("api",
	fx.Provide(func(lc fx.Lifecycle, a *app.Application, c config.Config, log *slog.Logger) *ws.Hub {
		return ws.NewHub(ws.Config{
			MaxConnections: c.WSMaxConnections, SendBuffer: c.WSSendBuffer, PingInterval: c.WSPingInterval,
			WriteTimeout: 5 * time.Second, OriginPatterns: originHosts(c.CORSAllowedOrigins), SnapshotEvery: c.WSSnapshotInterval,
		}, log)
	}),
	fx.Invoke(func(lc fx.Lifecycle, hub *ws.Hub, live *redisadapter.Live, a *app.Application, log *slog.Logger) {
		ctx, cancel := context.WithCancel(context.Background())
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				return live.Subscribe(ctx, log, func(e redisadapter.Envelope) {
					hub.Deliver(ws.Event{Type: e.Type, TenantID: e.TenantID, SaleID: e.SaleID, UserID: e.UserID, Data: e.Data, TS: e.TS,
						Snapshot: domain.Snapshot(e.Type)})
					observeSoldOut(a.SoldOutSales, e)
				})
			},
			OnStop: func(context.Context) error { cancel(); return nil },
		})
	}),
	fx.Provide(func() *bootstrapped { return &bootstrapped{} }),
	fx.Provide(func(lc fx.Lifecycle, a *app.Application, store *postgres.Store, rdb goredis.UniversalClient,
		epoch *redisadapter.Epoch, gate *redisadapter.Gate, tokens ports.TokenIssuer, prom *metrics.Prometheus, hub *ws.Hub,
		boot *bootstrapped, purchases ports.PurchaseStore, log *slog.Logger, c config.Config) (*HTTPServer, error) {
		// Redis must answer and hold the epoch: an API node sells from it.
		srv := httpadapter.NewServer(a, log, httpadapter.CookieConfig{Secure: c.SecureCookies()},
			store, redisadapter.Pinger{Client: rdb, Epoch: epoch}, boot)
		proxies, err := c.TrustedProxyPrefixes()
		if err != nil {
			return nil, err
		}
		handler, err := httpadapter.NewRouter(srv, tokenVerifier{tokens}, edgeGate{gate}, log, httpadapter.RouterConfig{
			MaxBodyBytes: c.MaxBodyBytes,
			Metrics:      prom.Handler(),
			Observer:     prom,
			Storefront:   web.Files,
			Docs:         docs.Files,
			Live:         liveHub{hub},
			Edge: httpadapter.EdgeConfig{
				AllowedOrigins: c.CORSAllowedOrigins, TrustedProxies: proxies, HSTS: c.Production(),
				PurchasesPerMinute: c.RateLimitPurchase, AuthPerMinute: c.RateLimitAuth, SoldOut: a.SoldOutSales,
				GateInPurchase: purchases.GateInPurchase(),
			},
		})
		if err != nil {
			return nil, err
		}
		if err := observeHTTP(prom, hub); err != nil {
			return nil, err
		}
		hs := &HTTPServer{Handler: handler}
		server := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    1 << 20, // the API refuses above httpadapter.MaxHeaderBytes; above this, the server (a problem too, NewListener)
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				ln, err := net.Listen("tcp", c.HTTPAddr)
				if err != nil {
					return fmt.Errorf("listen on %s: %w", c.HTTPAddr, err)
				}
				ln = httpadapter.NewListener(ln, c.Production()) // the server's own error answers as problems
				hs.mu.Lock()
				hs.addr = ln.Addr()
				hs.mu.Unlock()
				log.Info("api listening", "addr", ln.Addr().String())
				go func() {
					if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("http server stopped", "err", err)
					}
				}()
				return nil
			},
			// In-flight requests finish; new connections are refused.
			OnStop: server.Shutdown,
		})
		return hs, nil
	}),
	// Accepted orders are queued off the request path, under this node's lease: while the node
	// lives, the orders it accepted and has not queued yet are its own; if it dies (the lease
	// runs out) the worker queues them. It leaves once the dispatcher has drained, and only if
	// it holds nothing it could not queue.
	fx.Invoke(func(lc fx.Lifecycle, a *app.Application, d *dispatch.Queue, nodes *redisadapter.Nodes, c config.Config,
		log *slog.Logger) {
		lease := redisadapter.NewNodeLease(nodes, a.PlaceOrder.Node, c.NodeLease,
			func() bool { return d.Stranded() > 0 }, log)
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				if err := lease.Start(ctx); err != nil {
					return err
				}
				d.Start()
				return nil
			},
			OnStop: func(ctx context.Context) error { return errors.Join(d.Stop(ctx), lease.Stop(ctx)) },
		})
	}),
	fx.Invoke(func(lc fx.Lifecycle, a *app.Application, c config.Config, boot *bootstrapped, log *slog.Logger, _ *HTTPServer) {
		lc.Append(fx.StartHook(func(ctx context.Context) error {
			t, err := a.Bootstrap.Handle(ctx, app.Bootstrap{AdminEmail: c.AdminEmail, AdminPassword: c.AdminPassword})
			if err != nil {
				return err
			}
			// One pass over the live sales' inventories: a store with no epoch (new, or it
			// lost its data) is rebuilt and stamped now rather than at the worker's next pass.
			// A failure leaves readiness to the worker's passes.
			if _, err := a.Reconcile.RolledBack(ctx); err != nil {
				log.WarnContext(ctx, "inventory check at start failed; the worker's passes retry it", "err", err)
			}
			boot.done.Store(true)
			log.Info("bootstrap done", "tenant", t.Slug, "admin", c.AdminEmail)
			return nil
		}))
	}),
)

// bootstrapped is the API node's readiness while it creates the default tenant and admin: the
// server listens before that is done, and a login right after a 200 from /readyz must work.
type bootstrapped struct{ done atomic.Bool }

var errNotBootstrapped = errors.New("the default tenant and admin are not created yet")

func (b *bootstrapped) Name() string { return "bootstrap" }

func (b *bootstrapped) Ping(context.Context) error {
	if !b.done.Load() {
		return errNotBootstrapped
	}
	return nil
}

// Worker is the worker role: the order worker and the reconciler (the outbox relay is the
// Relay module, which needs Kafka).
var Worker = fx.Module("worker",
	fx.Invoke(watchSales),
	// Ready when Redis answers and holds the epoch: the worker adopts and writes from it. (It
	// replaces the admin listener's plain Redis check.)
	fx.Provide(fx.Annotate(func(rdb goredis.UniversalClient, epoch *redisadapter.Epoch) httpadapter.ReadinessCheck {
		return redisadapter.Pinger{Client: rdb, Epoch: epoch}
	}, fx.ResultTags(`group:"admin-ready"`))),
	fx.Invoke(func(prom *metrics.Prometheus) { prom.WorkerRuns() }),
	fx.Invoke(func(lc fx.Lifecycle, rdb goredis.UniversalClient, a *app.Application, c config.Config, prom *metrics.Prometheus, log *slog.Logger) {
		w := asynqadapter.NewWorker(rdb, asynqadapter.WorkerConfig{
			Queue: c.OrderQueue, SaleEventsQueue: c.SaleEventsQueue, Concurrency: c.WorkerConcurrency, RetryBase: c.WorkerRetryBase,
			RetryMax:     c.WorkerRetryMax,
			PollInterval: c.WorkerPollInterval, ShutdownTimeout: c.ShutdownWait, Observer: prom,
		}, a.WriteOrder, a.FireSaleEvent, log)
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error { return w.Start() },
			OnStop:  func(context.Context) error { w.Shutdown(); return nil },
		})
	}),
	fx.Invoke(func(lc fx.Lifecycle, a *app.Application, c config.Config, log *slog.Logger) {
		loop := newTicker(c.ReconcileInterval, func(ctx context.Context) {
			rep, err := a.Reconcile.Handle(ctx)
			if err != nil {
				log.ErrorContext(ctx, "reconcile pass failed", "err", err)
			}
			if rep.Requeued+rep.Released+rep.Confirmed > 0 {
				log.InfoContext(ctx, "reconciled", "requeued", rep.Requeued, "released", rep.Released, "confirmed", rep.Confirmed)
			}
		})
		lc.Append(fx.Hook{OnStart: loop.start, OnStop: loop.stop})
	}),
	// The waiting rooms' admission pass: any number of workers may run it (the rate and the
	// clock are Redis's), so it needs no lock.
	fx.Invoke(func(lc fx.Lifecycle, a *app.Application, c config.Config, log *slog.Logger) {
		loop := newTicker(c.RoomAdmitInterval, func(ctx context.Context) {
			rep, err := a.WaitingRoom.AdmitPass(ctx)
			if err != nil {
				log.ErrorContext(ctx, "waiting room admission pass failed", "err", err)
			}
			if rep.Admitted+rep.Expired+rep.Lost > 0 {
				log.DebugContext(ctx, "waiting rooms", "rooms", rep.Rooms, "admitted", rep.Admitted, "expired", rep.Expired, "lost", rep.Lost)
			}
		})
		lc.Append(fx.Hook{OnStart: loop.start, OnStop: loop.stop})
	}),
	// API nodes that died holding accepted orders: those orders are queued within seconds;
	// inventories the store rolled back are rebuilt within seconds; the orders of tasks no
	// worker holds any more are written within seconds; and moves of stock between a sharded
	// sale's shards that were cut short are finished.
	fx.Invoke(func(lc fx.Lifecycle, a *app.Application, c config.Config, log *slog.Logger) {
		loop := newTicker(c.NodeCheckInterval, func(ctx context.Context) {
			if _, err := a.Reconcile.DeadNodes(ctx); err != nil {
				log.ErrorContext(ctx, "dead node pass failed", "err", err)
			}
			if _, err := a.Reconcile.RolledBack(ctx); err != nil {
				log.ErrorContext(ctx, "rolled-back inventory pass failed", "err", err)
			}
			if _, err := a.Reconcile.Stranded(ctx); err != nil {
				log.ErrorContext(ctx, "stranded order task pass failed", "err", err)
			}
			if _, err := a.Reconcile.Transfers(ctx); err != nil {
				log.ErrorContext(ctx, "stock transfer pass failed", "err", err)
			}
		})
		lc.Append(fx.Hook{OnStart: loop.start, OnStop: loop.stop})
	}),
)

// Pprof serves net/http/pprof on PPROF_ADDR when set, for profiling under load.
var Pprof = fx.Invoke(func(lc fx.Lifecycle, c config.Config, log *slog.Logger) {
	if c.PprofAddr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: c.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", c.PprofAddr)
			if err != nil {
				return err
			}
			log.Info("pprof listening", "addr", ln.Addr().String())
			go func() { _ = srv.Serve(ln) }()
			return nil
		},
		OnStop: srv.Shutdown,
	})
})

// AdminServer is the admin listener on ADMIN_ADDR; Addr reports where it listens once started
// (nil when ADMIN_ADDR is empty).
type AdminServer struct {
	mu   sync.Mutex
	addr net.Addr
}

// Addr is the bound address (useful with ADMIN_ADDR=127.0.0.1:0).
func (s *AdminServer) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// adminChecks are what the roles of the process add to the admin listener: readiness (the
// outbox relay) and liveness (each consumer).
type adminChecks struct {
	fx.In
	Ready []httpadapter.ReadinessCheck `group:"admin-ready"`
	Live  []httpadapter.ReadinessCheck `group:"admin-live"`
}

// Admin serves /healthz, /readyz and /metrics on ADMIN_ADDR, when set, for the roles with no
// API to be watched through (worker, consumers; all too). /readyz checks PostgreSQL, Redis and
// what the roles add (the outbox relay); /healthz what they add (a consumer that stopped).
var Admin = fx.Module("admin",
	fx.Provide(func(lc fx.Lifecycle, c config.Config, store *postgres.Store, rdb goredis.UniversalClient,
		prom *metrics.Prometheus, checks adminChecks, log *slog.Logger) *AdminServer {
		s := &AdminServer{}
		if c.AdminAddr == "" {
			return s
		}
		ready := []httpadapter.ReadinessCheck{store}
		if !slices.ContainsFunc(checks.Ready, func(c httpadapter.ReadinessCheck) bool { return c.Name() == "redis" }) {
			ready = append(ready, redisadapter.Pinger{Client: rdb})
		}
		handler := httpadapter.NewAdminHandler(httpadapter.AdminConfig{
			Live:    checks.Live,
			Ready:   append(ready, checks.Ready...),
			Metrics: prom.Handler(),
		}, log)
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", c.AdminAddr)
				if err != nil {
					return fmt.Errorf("listen on ADMIN_ADDR %s: %w", c.AdminAddr, err)
				}
				s.mu.Lock()
				s.addr = ln.Addr()
				s.mu.Unlock()
				log.Info("admin listening", "addr", ln.Addr().String())
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("admin server stopped", "err", err)
					}
				}()
				return nil
			},
			OnStop: srv.Shutdown,
		})
		return s
	}),
	fx.Invoke(func(*AdminServer) {}),
)

// Migrate applies the migrations before anything else starts (the `all` role), on
// DATABASE_MIGRATE_URL when it is set (the server itself, when the pool goes through pgBouncer).
var Migrate = fx.Invoke(func(c config.Config, pool *pgxpool.Pool, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return MigrateDatabase(ctx, c, pool, log)
})

// MigrateDatabase applies the migrations on c.MigrateURL(): through pool when that is
// DATABASE_URL, else on a pool of its own, closed afterwards.
func MigrateDatabase(ctx context.Context, c config.Config, pool *pgxpool.Pool, log *slog.Logger) error {
	if pool == nil || c.MigrateURL() != c.DatabaseURL {
		own, err := postgres.Open(ctx, c.MigrateURL(), postgres.PoolOptions{MaxConns: 2, QueryExecMode: c.DBQueryExecMode})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer own.Close()
		pool = own
	}
	return postgres.Migrate(ctx, pool, log)
}

// ticker runs fn every interval in the background until stopped.
type ticker struct {
	interval time.Duration
	fn       func(context.Context)
	cancel   context.CancelFunc
	done     chan struct{}
}

func newTicker(interval time.Duration, fn func(context.Context)) *ticker {
	return &ticker{interval: interval, fn: fn, done: make(chan struct{})}
}

func (t *ticker) start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go func() {
		defer close(t.done)
		tk := time.NewTicker(t.interval)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				t.fn(ctx)
			}
		}
	}()
	return nil
}

func (t *ticker) stop(ctx context.Context) error {
	t.cancel()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// originHosts turns CORS origins (scheme://host:port) into the host patterns the WebSocket
// origin check takes.
func originHosts(origins []string) []string {
	hosts := make([]string, 0, len(origins))
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		}
	}
	return hosts
}

// tokenVerifier checks access tokens for the HTTP edge; the session is checked by the edge gate.
type tokenVerifier struct{ tokens ports.TokenIssuer }

func (v tokenVerifier) Handle(_ context.Context, token string) (domain.Principal, error) {
	return v.tokens.Verify(token)
}

// liveHub serves the HTTP adapter's live endpoint with the WebSocket hub.
type liveHub struct{ hub *ws.Hub }

var _ httpadapter.LiveHub = liveHub{}

func (l liveHub) Full() bool { return l.hub.Full() }

func (l liveHub) Serve(w http.ResponseWriter, r *http.Request, c httpadapter.LiveClient, sales []uuid.UUID) error {
	err := l.hub.Serve(w, r, ws.Identity{TenantID: c.TenantID, UserID: c.UserID}, sales)
	if errors.Is(err, ws.ErrFull) {
		return httpadapter.ErrLiveFull
	}
	return err
}

// edgeGate answers the HTTP edge's rate-limit and session questions with the Redis gate.
type edgeGate struct{ gate *redisadapter.Gate }

var _ httpadapter.EdgeGate = edgeGate{}

func (g edgeGate) Check(ctx context.Context, rateKey string, perMinute int, sessionID uuid.UUID) (httpadapter.GateDecision, error) {
	d, err := g.gate.Check(ctx, rateKey, perMinute, sessionID)
	return httpadapter.GateDecision(d), err
}

// observeSoldOut tells this node's sold-out sales of a sale's live event from any node: the
// events that show its stock (inventory:updated) or its window (sale:started, sale:ended).
func observeSoldOut(sales *app.SoldOutSales, e redisadapter.Envelope) {
	le := domain.LiveEvent{Type: e.Type, TenantID: e.TenantID, SaleID: e.SaleID, TS: e.TS}
	switch e.Type {
	case domain.LiveInventoryUpdated:
		var d domain.InventoryData
		if json.Unmarshal(e.Data, &d) != nil {
			return
		}
		le.Data = d
	case domain.LiveSaleStarted, domain.LiveSaleEnded:
		var d domain.SaleTimesData
		if json.Unmarshal(e.Data, &d) != nil {
			return
		}
		le.Data = d
	default:
		return
	}
	sales.Observe(le)
}
