package redis

import (
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/spans"
)

// tracer is this adapter's tracer: the process's, or a no-op one while tracing is off.
func tracer() trace.Tracer {
	return spans.Tracer("github.com/flashsale/flashsale/internal/adapters/redis")
}
