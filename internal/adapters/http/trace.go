package http

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
)

// tracer is the process's (otel's global provider: a no-op unless wiring installed one), asked
// at each use so that a provider installed after start is used.
func tracer() trace.Tracer {
	return otel.Tracer("github.com/flashsale/flashsale/internal/adapters/http")
}

// traceRequests runs each request in a server span that continues the caller's W3C trace
// context, if it sent one; nameSpans names it after the operation and accessLog records its
// status. With tracing off (otel's no-op provider) and no incoming traceparent the span is
// invalid and the request goes on unchanged: no context or request is copied.
func traceRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if len(r.Header["Traceparent"]) > 0 { // the canonical key: Get would allocate to canonicalize

			ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		ctx, span := tracer().Start(ctx, r.Method, serverSpan...)
		defer span.End()
		if span.IsRecording() {
			span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))
		}
		if !span.SpanContext().IsValid() {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// serverSpan is built once: a variadic option list built per request escapes and allocates.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// nameSpans names the request's span after the spec's operation id (PlaceOrder, GetOrder...).
func nameSpans(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetName(operationID)
			span.SetAttributes(attribute.String("flashsale.operation_id", operationID))
		}
		return f(ctx, w, r, request)
	}
}

// recordStatus puts the answer's status on the request's span; a 5xx is an error.
func recordStatus(ctx context.Context, status int) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
