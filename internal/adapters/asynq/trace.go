package asynq

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracer is the process's (otel's global provider: a no-op unless wiring installed one), asked
// at each use so that a provider installed after start is used.
func tracer() trace.Tracer {
	return otel.Tracer("github.com/flashsale/flashsale/internal/adapters/asynq")
}

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

// withTraceParent is ctx continuing the trace of a W3C traceparent (ctx itself if it is empty or
// malformed).
func withTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
}
