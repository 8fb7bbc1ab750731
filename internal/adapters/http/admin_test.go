package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	httpadapter "github.com/flashsale/flashsale/internal/adapters/http"
)

type check struct {
	name string
	err  error
}

func (c *check) Name() string               { return c.name }
func (c *check) Ping(context.Context) error { return c.err }

// reasoned is a failure whose Reason may be shown, unlike its Error.
type reasoned struct{ reason, detail string }

func (e reasoned) Error() string  { return e.reason + ": " + e.detail }
func (e reasoned) Reason() string { return e.reason }

// TestAdminHandler: /healthz and /readyz answer 200 while their checks pass and 503 naming the
// failing one otherwise; /metrics is the handler given.
func TestAdminHandler(t *testing.T) {
	t.Parallel()
	db, relay, consumer := &check{name: "postgres"}, &check{name: "outbox-relay"}, &check{name: "consumer g"}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("flashsale_up 1\n")) })
	srv := httptest.NewServer(httpadapter.NewAdminHandler(httpadapter.AdminConfig{
		Live: []httpadapter.ReadinessCheck{consumer}, Ready: []httpadapter.ReadinessCheck{db, relay}, Metrics: metrics,
	}, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	get := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if path != "/metrics" {
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode, body
	}
	if code, body := get("/readyz"); code != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("/readyz = %d %v", code, body)
	}
	// A failing check shows its Reason, never its error (hosts, users, driver messages).
	relay.err = reasoned{"not publishing", "kafka-1.internal:9092: connection refused"}
	code, body := get("/readyz")
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || body["status"] != "unavailable" || checks["postgres"] != "ok" ||
		checks["outbox-relay"] != "unavailable: not publishing" {
		t.Fatalf("/readyz with the relay failing = %d %v", code, body)
	}
	db.err = errors.New("dial tcp 10.0.0.5:5432: user flashsale: connection refused")
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body["checks"].(map[string]any)["postgres"] != "unavailable" {
		t.Fatalf("/readyz with an error that has no Reason = %d %v, want it shown as unavailable only", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while the consumer runs", code)
	}
	consumer.err = errors.New("stopped")
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz = %d with the consumer stopped", code)
	}
	if code, _ := get("/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
}
