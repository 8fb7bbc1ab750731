package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.uber.org/fx"

	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/adapters/mail"
	"github.com/flashsale/flashsale/internal/adapters/metrics"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Brokers is the Kafka bootstrap list the process uses.
type Brokers string

func topics(c config.Config) []kafka.TopicSpec {
	return []kafka.TopicSpec{
		{Name: domain.TopicOrderConfirmed, Partitions: int32(c.KafkaPartitions)},
		{Name: domain.TopicOrderConfirmedDLQ, Partitions: 1},
	}
}

// EmbeddedBroker starts the in-process Kafka-protocol broker, unless KAFKA_BROKERS names a
// real cluster (then it provides nothing).
var EmbeddedBroker = fx.Module("embedded-kafka",
	fx.Provide(func(lc fx.Lifecycle, c config.Config, log *slog.Logger) (*kafka.Embedded, error) {
		if c.KafkaBrokers != "" {
			return nil, nil
		}
		e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Port: c.KafkaEmbeddedPort, Dir: c.KafkaEmbeddedDir, Topics: topics(c)}, log)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(e.Close))
		return e, nil
	}),
	fx.Invoke(func(*kafka.Embedded) {}),
)

// Kafka provides the broker list, the producer and the guarded publisher, and creates the
// topics once the brokers answer.
var Kafka = fx.Module("kafka",
	fx.Provide(
		func(p struct {
			fx.In
			Config   config.Config
			Embedded *kafka.Embedded `optional:"true"`
		}) Brokers {
			if p.Embedded != nil {
				return Brokers(p.Embedded.Addr())
			}
			return Brokers(p.Config.Brokers())
		},
		func(lc fx.Lifecycle, b Brokers, c config.Config, prom *metrics.Prometheus, log *slog.Logger) (*kafka.Producer, error) {
			p, err := kafka.NewProducer(kafka.ProducerConfig{
				Brokers: string(b), ClientID: "flashsale", DeliveryTimeout: c.KafkaDeliveryTimeout, Observer: prom,
			}, log)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(func() { p.Close(5 * time.Second) }))
			return p, nil
		},
		fx.Annotate(func(p *kafka.Producer, c config.Config, prom *metrics.Prometheus, log *slog.Logger) *kafka.GuardedPublisher {
			g := kafka.NewGuardedPublisher(p, uint32(c.BreakerFailures), c.BreakerOpenFor, prom, log)
			prom.WatchBreaker(g.State)
			return g
		}, fx.As(new(ports.EventPublisher))),
		// The broker is watched for a restart that lost its log: the embedded one, in this process
		// or in its own (`flashsale broker`, reached through KAFKA_BROKERS), restarts empty unless
		// it has KAFKA_EMBEDDED_DIR; a Kafka cluster keeps what it acknowledged (acks=all) and its
		// cluster id, unless it is recreated, which is a loss too.
		func(lc fx.Lifecycle, b Brokers) (ports.BrokerWatcher, error) {
			w, err := kafka.NewClusterWatcher(string(b), 2*time.Second)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(w.Close))
			return w, nil
		},
	),
	// Kafka being down must not stop orders: the role starts anyway, and the topics are created
	// once the brokers answer (publishing waits in the outbox meanwhile).
	fx.Invoke(func(lc fx.Lifecycle, b Brokers, c config.Config, log *slog.Logger) {
		t := newTopicCreator(func(ctx context.Context) error {
			return kafka.EnsureTopics(ctx, string(b), topics(c))
		}, log.With("brokers", string(b)))
		lc.Append(fx.Hook{OnStart: t.start, OnStop: t.stop})
	}),
)

// Backoff between attempts at creating the topics: doubling from the first to the last.
const (
	topicRetryFirst = time.Second
	topicRetryMax   = 30 * time.Second
	topicAttempt    = 10 * time.Second
)

// topicCreator creates the topics in the background, retrying with backoff until they exist or
// it is stopped.
type topicCreator struct {
	ensure      func(context.Context) error
	log         *slog.Logger
	first, most time.Duration
	cancel      context.CancelFunc
	done        chan struct{}
}

func newTopicCreator(ensure func(context.Context) error, log *slog.Logger) *topicCreator {
	return &topicCreator{ensure: ensure, log: log, first: topicRetryFirst, most: topicRetryMax}
}

// start only starts the work: it never waits for the brokers.
func (t *topicCreator) start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	go t.run(ctx)
	return nil
}

func (t *topicCreator) run(ctx context.Context) {
	defer close(t.done)
	wait := t.first
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, topicAttempt)
		err := t.ensure(actx)
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				t.log.Info("kafka topics created", "attempts", attempt)
			}
			return
		case ctx.Err() != nil:
			return
		case attempt == 1:
			t.log.Warn("kafka not reachable yet; events wait in the outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, t.most)
	}
}

// stop cancels the work and waits for it to end (an attempt in flight sees the cancellation).
func (t *topicCreator) stop(ctx context.Context) error {
	t.cancel()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Relay publishes the outbox (part of the worker role); its health is on the admin listener's
// /readyz and in the metrics.
var Relay = fx.Module("relay",
	fx.Provide(fx.Annotate(func(a *app.Application) httpadapter.ReadinessCheck { return relayCheck{a.RelayOutbox} },
		fx.ResultTags(`group:"admin-ready"`))),
	fx.Invoke(func(a *app.Application, prom *metrics.Prometheus) {
		prom.WatchRelay(func() metrics.RelayState {
			s := a.RelayOutbox.Status()
			return metrics.RelayState{Healthy: s.Healthy, LastPublish: s.LastPublish, Published: s.Published, Resent: s.Resent}
		})
	}),
	fx.Invoke(func(lc fx.Lifecycle, a *app.Application, c config.Config, log *slog.Logger) {
		failing := false
		loop := newTicker(c.RelayInterval, func(ctx context.Context) {
			n, err := a.RelayOutbox.Handle(ctx)
			switch {
			case err != nil && !failing:
				log.WarnContext(ctx, "outbox relay: events wait for the broker", "published", n, "err", err)
				failing = true
			case err == nil && failing:
				log.InfoContext(ctx, "outbox relay: the broker takes events again", "published", n)
				failing = false
			}
		})
		lc.Append(fx.Hook{OnStart: loop.start, OnStop: loop.stop})
	}),
)

// relayCheck is the relay's health as a readiness check.
type relayCheck struct{ relay *app.RelayOutboxHandler }

func (relayCheck) Name() string { return "outbox-relay" }

func (r relayCheck) Ping(context.Context) error {
	if s := r.relay.Status(); !s.Healthy {
		// The reason without the last error's words: those may name the brokers.
		return checkFailed{reason: strings.TrimSuffix(s.Problem, ": "+s.LastError), err: errors.New(s.Problem)}
	}
	return nil
}

// checkFailed is a failed admin check: Reason is fit for anyone to read, Error (the broker's
// or the database's own words, which may name hosts) for the logs.
type checkFailed struct {
	reason string
	err    error
}

func (e checkFailed) Error() string  { return e.reason + ": " + e.err.Error() }
func (e checkFailed) Unwrap() error  { return e.err }
func (e checkFailed) Reason() string { return e.reason }

// Mailer picks SMTP when SMTP_ADDR is set, else .eml files in MAIL_DIR.
var Mailer = fx.Provide(func(c config.Config) (ports.Mailer, error) {
	if c.SMTPAddr == "" {
		return mail.FileMailer{Dir: c.MailDir, From: c.MailFrom}, nil
	}
	return mail.NewSMTPMailer(mail.SMTPConfig{Addr: c.SMTPAddr, Username: c.SMTPUsername, Password: c.SMTPPassword,
		From: c.MailFrom, Timeout: 10 * time.Second})
})

// ConsumerNames are the roles of `flashsale consumer <name>`.
var ConsumerNames = []string{"email", "analytics", "inventory-sync"}

// Consumer runs one consumer group on order.confirmed.
func Consumer(name string) (fx.Option, error) {
	var group string
	var handle func(*app.Application) func(context.Context, domain.OrderConfirmedV1) error
	extra := fx.Options()
	switch name {
	case "email":
		group = app.ConsumerEmail
		handle = func(a *app.Application) func(context.Context, domain.OrderConfirmedV1) error {
			return a.SendOrderEmail.Handle
		}
	case "analytics":
		group = app.ConsumerAnalytics
		handle = func(a *app.Application) func(context.Context, domain.OrderConfirmedV1) error {
			return a.RecordSaleStats.Handle
		}
	case "inventory-sync":
		group = app.ConsumerInventorySync
		handle = func(a *app.Application) func(context.Context, domain.OrderConfirmedV1) error {
			return a.SyncInventory.Handle
		}
		extra = fx.Invoke(func(lc fx.Lifecycle, a *app.Application, c config.Config, log *slog.Logger) {
			loop := newTicker(c.InventoryCheck, func(ctx context.Context) {
				if _, err := a.SyncInventory.Check(ctx); err != nil {
					log.WarnContext(ctx, "inventory check failed", "err", err)
				}
			})
			lc.Append(fx.Hook{OnStart: loop.start, OnStop: loop.stop})
		})
	default:
		return nil, fmt.Errorf("unknown consumer %q (want one of %v)", name, ConsumerNames)
	}
	alive := &consumerAlive{group: group}
	watched := &watchedConsumer{}
	return fx.Module("consumer-"+name, extra,
		fx.Provide(fx.Annotate(func() httpadapter.ReadinessCheck { return alive }, fx.ResultTags(`group:"admin-live"`))),
		fx.Provide(fx.Annotate(func() *watchedConsumer { return watched }, fx.ResultTags(`group:"consumers"`))),
		fx.Invoke(func(lc fx.Lifecycle, a *app.Application, b Brokers, dlq *kafka.Producer, c config.Config, log *slog.Logger) error {
			apply := handle(a)
			consumer, err := kafka.NewConsumer(kafka.ConsumerConfig{
				Brokers: string(b), Group: group, Topic: domain.TopicOrderConfirmed, DLQTopic: domain.TopicOrderConfirmedDLQ,
				PoisonAttempts: c.PoisonAttempts, Backoff: c.ConsumerBackoff, MaxBackoff: c.ConsumerMaxBackoff,
			}, dlq, func(ctx context.Context, m kafka.Message) error {
				e, err := domain.DecodeOrderConfirmed(m.Value)
				if err != nil {
					return err
				}
				return apply(ctx, e)
			}, log)
			if err != nil {
				return err
			}
			watched.c.Store(consumer)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					wg.Go(func() {
						if err := consumer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
							log.Error("consumer stopped", "group", group, "err", err)
							alive.stopped(err)
						}
					})
					return nil
				},
				OnStop: func(stopCtx context.Context) error {
					cancel()
					done := make(chan struct{})
					go func() { wg.Wait(); close(done) }()
					select {
					case <-done:
						return nil
					case <-stopCtx.Done():
						return stopCtx.Err()
					}
				},
			})
			return nil
		}),
	), nil
}

// consumerAlive fails the admin listener's /healthz once its consumer stopped for good (a
// fatal consumer error): the process is alive but no longer consumes, and should be restarted.
type consumerAlive struct {
	group string
	mu    sync.Mutex
	err   error
}

func (c *consumerAlive) Name() string { return "consumer " + c.group }

func (c *consumerAlive) Ping(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return checkFailed{reason: "stopped", err: c.err}
	}
	return nil
}

func (c *consumerAlive) stopped(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// Consumers runs every consumer group (the `all` role).
func Consumers() fx.Option {
	opts := []fx.Option{Mailer}
	for _, n := range ConsumerNames {
		o, _ := Consumer(n)
		opts = append(opts, o)
	}
	return fx.Options(opts...)
}
