package postgres

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracer is the process's (otel's global provider, asked at each use so that a provider
// installed after start is used). Until one is installed it is otel's no-op tracer, whose span
// costs one context value; the global's default would allocate a span too.
func tracer() trace.Tracer {
	if tp := otel.GetTracerProvider(); tp != untraced {
		return tp.Tracer("github.com/flashsale/flashsale/internal/adapters/postgres")
	}
	return noop.Tracer{}
}

// untraced is otel's global provider as it is before tracing.Start (or a test) installs one.
var untraced = otel.GetTracerProvider()

// endSpan records err, if any, as the span's outcome and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceParentOf is ctx's span as a W3C traceparent ("" when ctx has none).
func traceParentOf(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}
