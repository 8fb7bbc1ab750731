package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/flashsale/flashsale/internal/adapters/tracing"
)

// TestStartExportsOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set (http/protobuf), a span ended
// before the stop reaches the collector's /v1/traces by the stop's flush.
func TestStartExportsOverOTLP(t *testing.T) {
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" && len(body) > 0 {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	ctx := context.Background()
	shutdown, err := tracing.Start(ctx, tracing.Config{Endpoint: collector.URL, Protocol: tracing.ProtocolHTTP,
		ServiceName: "flashsale-test", InstanceID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "op")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("the collector received no traces")
	}
}

// TestStartExportsOverOTLPgRPC: OTEL_EXPORTER_OTLP_PROTOCOL=grpc sends the spans to a gRPC
// collector, its name and service from the span's resource.
func TestStartExportsOverOTLPgRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	collector := &grpcCollector{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, collector)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	endpoint := "http://" + ln.Addr().String()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	ctx := context.Background()
	shutdown, err := tracing.Start(ctx, tracing.Config{Endpoint: endpoint, Protocol: tracing.ProtocolGRPC,
		ServiceName: "flashsale-grpc-test", InstanceID: "t2"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "grpc-op")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collector.spans.Load(); got != 1 {
		t.Fatalf("the collector received %d spans of service flashsale-grpc-test named grpc-op, want 1", got)
	}
}

type grpcCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	spans atomic.Int32
}

func (c *grpcCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if service == "flashsale-grpc-test" && s.GetName() == "grpc-op" {
					c.spans.Add(1)
				}
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}
