package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Protocols an exporter speaks (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config says whether and how traces are exported.
type Config struct {
	// Endpoint is OTEL_EXPORTER_OTLP_ENDPOINT; empty: tracing stays off (otel's no-op provider).
	// The exporter reads it, and the other OTEL_EXPORTER_OTLP_* variables, from the
	// environment itself.
	Endpoint string
	// Protocol is ProtocolHTTP or ProtocolGRPC.
	Protocol string
	// ServiceName and InstanceID name the process in its traces (service.name,
	// service.instance.id); OTEL_RESOURCE_ATTRIBUTES may add more.
	ServiceName, InstanceID string
}

// Start installs the process-wide tracer provider and W3C trace-context propagator that the
// adapters use (otel's globals), exporting in batches, and returns what flushes and stops
// them. With no endpoint it installs nothing: the globals stay otel's no-ops, spans cost next
// to nothing and nothing is exported.
func Start(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	if cfg.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	var exporter sdktrace.SpanExporter
	switch cfg.Protocol {
	case ProtocolGRPC:
		exporter, err = otlptracegrpc.New(ctx)
	case ProtocolHTTP, "":
		exporter, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTLP protocol %q is not supported (%s or %s)", cfg.Protocol, ProtocolHTTP, ProtocolGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", cfg.ServiceName), attribute.String("service.instance.id", cfg.InstanceID)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	Install(tp)
	return tp.Shutdown, nil
}

// Install makes tp the provider every adapter's spans go to (tests install one with an
// in-memory exporter), with W3C trace-context propagation.
func Install(tp *sdktrace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
}
