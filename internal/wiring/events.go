package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/adapters/mail"
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
		e, err := kafka.StartEmbedded(c.KafkaEmbeddedPort, topics(c), log)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(e.Close))
		return e, nil
	}),
	fx.Invoke(func(*kafka.Embedded) {}),
)

// Kafka provides the broker list (creating the topics there), the producer and the guarded
// publisher.
var Kafka = fx.Module("kafka",
	fx.Provide(
		func(p struct {
			fx.In
			Config   config.Config
			Log      *slog.Logger
			Embedded *kafka.Embedded `optional:"true"`
		}) Brokers {
			brokers := p.Config.Brokers()
			if p.Embedded != nil {
				brokers = p.Embedded.Addr()
			}
			// Kafka being down must not stop orders: start anyway, and create the topics once
			// it answers (publishing waits in the outbox meanwhile).
			go func() {
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := kafka.EnsureTopics(ctx, brokers, topics(p.Config))
					cancel()
					if err == nil {
						return
					}
					if attempt == 0 {
						p.Log.Warn("kafka not reachable yet; events wait in the outbox", "brokers", brokers, "err", err)
					}
					time.Sleep(5 * time.Second)
				}
			}()
			return Brokers(brokers)
		},
		func(lc fx.Lifecycle, b Brokers, c config.Config, log *slog.Logger) (*kafka.Producer, error) {
			p, err := kafka.NewProducer(kafka.ProducerConfig{
				Brokers: string(b), ClientID: "flashsale", DeliveryTimeout: c.KafkaDeliveryTimeout,
			}, log)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(func() { p.Close(5 * time.Second) }))
			return p, nil
		},
		fx.Annotate(func(p *kafka.Producer, c config.Config, log *slog.Logger) *kafka.GuardedPublisher {
			return kafka.NewGuardedPublisher(p, uint32(c.BreakerFailures), c.BreakerOpenFor, log)
		}, fx.As(new(ports.EventPublisher))),
	),
)

// Relay publishes the outbox (part of the worker role).
var Relay = fx.Module("relay",
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
	return fx.Module("consumer-"+name, extra,
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
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					wg.Go(func() {
						if err := consumer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
							log.Error("consumer stopped", "group", group, "err", err)
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

// Consumers runs every consumer group (the `all` role).
func Consumers() fx.Option {
	opts := []fx.Option{Mailer}
	for _, n := range ConsumerNames {
		o, _ := Consumer(n)
		opts = append(opts, o)
	}
	return fx.Options(opts...)
}
