package wiring

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
)

// TestRolesAreComplete: every role the binary runs (cmd/flashsale) finds all it asks for in its
// own modules, without building anything.
func TestRolesAreComplete(t *testing.T) {
	cfg := config.Defaults()
	cfg.LogLevel = "error"
	roles := map[string][]fx.Option{
		"all":    {EmbeddedBroker, Kafka, Migrate, API, Worker, Relay, Consumers(), Admin},
		"serve":  {API},
		"worker": {Kafka, Worker, Relay, Admin},
	}
	for _, name := range ConsumerNames {
		consumer, err := Consumer(name)
		if err != nil {
			t.Fatal(err)
		}
		roles["consumer "+name] = []fx.Option{Kafka, Mailer, consumer, Admin}
	}
	for name, opts := range roles {
		if err := fx.ValidateApp(Config(cfg), Backends, fx.Options(opts...)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestAppDepsAreAskedOfTheContainerFieldByField: the constructor asks for every field of
// app.Deps, of its type, optional only where optionalDeps says, and hands each one on.
func TestAppDepsAreAskedOfTheContainerFieldByField(t *testing.T) {
	ctor := reflect.ValueOf(appDepsFromContainer())
	in := ctor.Type().In(0)
	deps := reflect.TypeFor[app.Deps]()
	optional := map[string]bool{}
	for _, n := range optionalDeps {
		optional[n] = true
	}
	arg := reflect.New(in).Elem()
	for i := range deps.NumField() {
		f := deps.Field(i)
		p, ok := in.FieldByName(f.Name)
		if !ok || p.Type != f.Type {
			t.Errorf("app.Deps.%s (%v) is not asked for: %v", f.Name, f.Type, p.Type)
			continue
		}
		if got := p.Tag.Get("optional") == "true"; got != optional[f.Name] {
			t.Errorf("app.Deps.%s optional=%v, want %v", f.Name, got, optional[f.Name])
		}
	}
	log := slog.New(slog.DiscardHandler)
	now := func() time.Time { return time.Unix(0, 0) }
	arg.FieldByName("Log").Set(reflect.ValueOf(log))
	arg.FieldByName("Now").Set(reflect.ValueOf(now))
	out := ctor.Call([]reflect.Value{arg})
	if !out[1].IsNil() {
		t.Fatal(out[1].Interface())
	}
	d := out[0].Interface().(app.Deps)
	if d.Log != log || d.Now == nil || !d.Now().Equal(time.Unix(0, 0)) {
		t.Fatalf("fields not handed on: %+v", d)
	}
}

// The API node listens before it has created the default tenant and admin: until it has, it is
// not ready, so that a login right after a 200 from /readyz works.
func TestNotReadyBeforeTheBootstrap(t *testing.T) {
	b := &bootstrapped{}
	if err := b.Ping(context.Background()); !errors.Is(err, errNotBootstrapped) {
		t.Fatalf("Ping before the bootstrap = %v, want errNotBootstrapped", err)
	}
	b.done.Store(true)
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the bootstrap = %v", err)
	}
}
