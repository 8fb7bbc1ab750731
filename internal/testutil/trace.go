package testutil

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/flashsale/internal/adapters/tracing"
)

// RecordSpans installs, until t ends, a tracer provider that keeps every ended span in memory
// and returns its exporter. The provider is the process's (otel's global, which the adapters
// use): the spans of any system running meanwhile are recorded too, so a test picks its own by
// trace id. Call it before starting the system.
func RecordSpans(t testing.TB) *tracetest.InMemoryExporter {
	t.Helper()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	tracing.Install(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	return exporter
}
