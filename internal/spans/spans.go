// Package spans is what the adapters share to trace their work with OpenTelemetry: the
// process's tracer, the end of a span, and the W3C traceparent a queue task or an outbox event
// carries across a process boundary. It imports only otel, so any adapter may use it;
// internal/adapters/tracing installs the provider.
package spans

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// untraced is otel's global provider as it is before tracing.Start (or a test) installs one.
var untraced = otel.GetTracerProvider()

// On reports whether a tracer provider is installed: with none, there is nothing to trace.
func On() bool { return otel.GetTracerProvider() != untraced }

// Tracer is the process's tracer for scope (an adapter's import path): otel's global provider,
// asked at each use so that a provider installed after start is used. Until one is installed it
// is otel's no-op tracer, whose span costs one context value; the global's default would
// allocate a span too.
func Tracer(scope string) trace.Tracer {
	if tp := otel.GetTracerProvider(); tp != untraced {
		return tp.Tracer(scope)
	}
	return noop.Tracer{}
}

// End records err, if any, as the span's outcome and ends it.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceParent is ctx's span as a W3C traceparent ("" when ctx has none).
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// WithTraceParent is ctx continuing the trace of a W3C traceparent (ctx itself if it is empty
// or malformed).
func WithTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
}
