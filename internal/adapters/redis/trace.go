package redis

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer is the process's (otel's global provider: a no-op unless wiring installed one), asked
// at each use so that a provider installed after start is used.
func tracer() trace.Tracer {
	return otel.Tracer("github.com/flashsale/flashsale/internal/adapters/redis")
}

// endSpan records err, if any, as the span's outcome and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
