// Package tracing exports the process's OpenTelemetry traces over OTLP when an endpoint is
// configured, and puts the trace of a log line's context on the line (trace_id, span_id).
package tracing
