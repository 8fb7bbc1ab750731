package http

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/spans"
)

// tracer is this adapter's tracer: the process's, or a no-op one while tracing is off.
func tracer() trace.Tracer {
	return spans.Tracer("github.com/flashsale/flashsale/internal/adapters/http")
}

// traceRequests runs each request in a server span that continues the caller's W3C trace
// context, if it sent one; nameSpans names it after the operation and accessLog records its
// status. With tracing off (no provider installed) and no incoming traceparent the request goes
// on unchanged: no span, no context or request copied.
func traceRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		incoming := len(r.Header["Traceparent"]) > 0 // the canonical key: Get would canonicalize it
		if !incoming && !spans.On() {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if incoming {
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
// The strict handler wraps each request anew: untraced, it gets the handler itself.
func nameSpans(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	if !spans.On() {
		return f
	}
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
