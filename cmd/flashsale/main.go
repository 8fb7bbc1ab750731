// Command flashsale is the whole Flashsale system in one binary: `flashsale all` runs every role
// in one process; `serve`, `worker` and `migrate` run one role each, for scale-out.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/wiring"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// go-redis prints each failed dial itself, on the standard logger: a Redis that is down at
	// start said so four times before the one error main prints. Its notes go to slog at debug.
	goredis.SetLogger(redisLogger{})
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "flashsale:", err)
		os.Exit(1)
	}
}

// redisLogger hands go-redis' internal notes to slog at debug level; the failures that matter
// reach the caller as errors.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "flashsale",
		Short:         "Flash-sale platform: sells exactly the stock it has, keeps every order",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Subcommands inherit this template, so `flashsale <role> --help` shows the roles and the
	// configuration too.
	root.SetHelpTemplate(root.HelpTemplate() + "\n" + rolesHelp() + "\n" + envHelp() + "\n" + redisHelp())
	root.AddCommand(
		roleCommand("all", "Run every role in one process (migrate, API, worker, relay, consumers; an embedded Kafka broker unless KAFKA_BROKERS is set); the default for local runs",
			wiring.EmbeddedBroker, wiring.Kafka, wiring.Migrate, wiring.API, wiring.Worker, wiring.Relay, wiring.Consumers(), wiring.Admin),
		roleCommand("serve", "Run the HTTP API", wiring.API),
		roleCommand("worker", "Run the order worker, the reconciler and the outbox relay", wiring.Kafka, wiring.Worker, wiring.Relay, wiring.Admin),
		consumerCommand(),
		brokerCommand(),
		migrateCommand(),
		loadtestCommand(),
		chaosCommand(),
		healthcheckCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "flashsale", buildVersion())
			},
		},
	)
	return root
}

func roleCommand(name, short string, roles ...fx.Option) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			app := fx.New(
				wiring.Config(cfg),
				wiring.Backends,
				fx.Options(roles...),
				fx.StopTimeout(cfg.ShutdownWait+5*time.Second),
			)
			return runApp(app)
		},
	}
}

// runApp starts app, blocks until SIGINT/SIGTERM, then stops it gracefully. A failure to build or
// start it is returned, so that main prints why (fx.App.Run would exit quietly unless its logger
// is on).
func runApp(app *fx.App) error {
	if err := app.Err(); err != nil {
		// The dependency chain that led to it is noise to an operator: the first failure says why.
		return dig.RootCause(err)
	}
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	sig := <-app.Wait()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if sig.ExitCode != 0 {
		return fmt.Errorf("stopped with exit code %d", sig.ExitCode)
	}
	return nil
}

func consumerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:       "consumer " + strings.Join(wiring.ConsumerNames, "|"),
		Short:     "Run one consumer group of order.confirmed: " + strings.Join(wiring.ConsumerNames, ", "),
		Args:      cobra.ExactArgs(1),
		ValidArgs: wiring.ConsumerNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			consumer, err := wiring.Consumer(args[0])
			if err != nil {
				return err
			}
			return roleCommand(args[0], "", wiring.Kafka, wiring.Mailer, consumer, wiring.Admin).RunE(cmd, nil)
		},
	}
	return cmd
}

func brokerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "broker",
		Short: "Run only the embedded Kafka-protocol broker on KAFKA_EMBEDDED_PORT (for running roles as separate processes locally)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			cfg.KafkaBrokers = ""
			return runApp(fx.New(wiring.Config(cfg), wiring.EmbeddedBroker))
		},
	}
}

func migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			return wiring.MigrateDatabase(ctx, cfg, nil, cfg.Logger())
		},
	}
}

// roles is every way to run the binary, for --help.
var roles = []struct{ use, what string }{
	{"all", "every role in one process (local runs; embedded Kafka unless KAFKA_BROKERS is set)"},
	{"serve", "the HTTP API"},
	{"worker", "order worker, reconciler and outbox relay"},
	{"consumer " + strings.Join(wiring.ConsumerNames, "|"), "one consumer group of order.confirmed"},
	{"migrate", "apply the database migrations and exit"},
	{"broker", "only the embedded Kafka-protocol broker (local multi-process runs)"},
	{"loadtest", "drive a flash sale against the API and verify the outcome"},
	{"chaos", "inject faults under load on private servers and count every broken invariant"},
	{"healthcheck", "GET /healthz of the local API (--admin: of ADMIN_ADDR); exit 0 if healthy (container health checks)"},
	{"version", "print the version"},
}

func rolesHelp() string {
	var b strings.Builder
	b.WriteString("Roles (one binary; for scale-out run one role per process):\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range roles {
		fmt.Fprintf(w, "  flashsale %s\t%s\n", r.use, r.what)
	}
	_ = w.Flush()
	return b.String()
}

func envHelp() string {
	var b strings.Builder
	b.WriteString("Configuration (environment variables, default in brackets):\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, v := range config.Vars() {
		fmt.Fprintf(w, "  %s\t[%s]\t%s\n", v.Name, v.Default, v.Help)
	}
	_ = w.Flush()
	return b.String()
}

// redisForms are the forms of REDIS_URL, each with an example (go-redis's URL forms; see
// redisadapter.NewClient).
var redisForms = []struct{ what, example string }{
	{"a single node", "redis://:password@10.0.0.5:6379/0"},
	{"Sentinel: the sentinels (host and each addr), the master's name, its password (password=)",
		"redis://10.0.0.11:26379/0?master_name=flashsale&addr=10.0.0.12:26379&addr=10.0.0.13:26379&password=secret"},
	{"Cluster: two seed nodes or more (host and each addr); the others are discovered",
		"redis://:password@10.0.0.21:6379?addr=10.0.0.22:6379&addr=10.0.0.23:6379"},
	{"TLS, in each form: rediss:// (each server's certificate checked against its own host)",
		"rediss://:password@redis.example.com:6380/0"},
}

func redisHelp() string {
	var b strings.Builder
	b.WriteString("REDIS_URL (every Redis user shares its one client; query parameters: go-redis options, e.g. pool_size=50):\n")
	for _, f := range redisForms {
		fmt.Fprintf(&b, "  %s:\n    %s\n", f.what, f.example)
	}
	return b.String()
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return "dev-" + s.Value[:min(12, len(s.Value))]
			}
		}
	}
	return version
}
