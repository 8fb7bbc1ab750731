package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flashsale/flashsale/internal/adapters/tracing"
)

// TestLogHandlerAddsTheTrace: a line logged in a span's context names its trace and span; one
// logged without (or after WithAttrs and WithGroup) is unchanged or still traced.
func TestLogHandlerAddsTheTrace(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewTextHandler(&buf, nil)))
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()

	log.InfoContext(context.Background(), "untraced")
	if strings.Contains(buf.String(), "trace_id") {
		t.Fatalf("a line with no span in its context got a trace: %s", buf.String())
	}
	buf.Reset()
	log.With("component", "x").InfoContext(ctx, "traced")
	line := buf.String()
	if !strings.Contains(line, "trace_id="+sc.TraceID().String()) || !strings.Contains(line, "span_id="+sc.SpanID().String()) ||
		!strings.Contains(line, "component=x") {
		t.Fatalf("line %q lacks trace_id=%s span_id=%s component=x", line, sc.TraceID(), sc.SpanID())
	}
}

// TestStartWithoutEndpointIsOff: no OTLP endpoint, no exporter and nothing installed.
func TestStartWithoutEndpointIsOff(t *testing.T) {
	shutdown, err := tracing.Start(context.Background(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tracing.Start(context.Background(), tracing.Config{Endpoint: "http://127.0.0.1:1", Protocol: "http/json"}); err == nil {
		t.Fatal("an unsupported protocol was taken")
	}
}
