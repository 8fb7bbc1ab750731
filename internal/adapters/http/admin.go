package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// AdminConfig is what a role's admin listener (ADMIN_ADDR) serves: the worker and the consumers
// have no API of their own for an orchestrator or Prometheus to watch them through.
type AdminConfig struct {
	// Live are checked by GET /healthz: one failing means the process is alive but no longer
	// does its work, and should be restarted.
	Live []ReadinessCheck
	// Ready are checked by GET /readyz: the dependencies the role needs, and its own work.
	Ready []ReadinessCheck
	// Metrics serves GET /metrics.
	Metrics http.Handler
	// Timeout bounds each request's checks (default 2s).
	Timeout time.Duration
}

// adminReport is the body of /healthz and /readyz: ok or unavailable, and each check's result:
// "ok", or "unavailable" and the check's Reason when its error has one; never the error itself,
// which may carry hosts, users or driver messages (it is logged).
type adminReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// NewAdminHandler serves /healthz, /readyz and /metrics. A failing check answers 503 with the
// reason under its name.
func NewAdminHandler(cfg AdminConfig, log *slog.Logger) http.Handler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", adminChecks(cfg.Live, cfg.Timeout, log))
	mux.Handle("GET /readyz", adminChecks(cfg.Ready, cfg.Timeout, log))
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	return mux
}

// adminChecks runs the checks on each request; a change of outcome is logged once, not every
// probe.
func adminChecks(checks []ReadinessCheck, timeout time.Duration, log *slog.Logger) http.Handler {
	var failing atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		report := adminReport{Status: "ok", Checks: map[string]string{}}
		logged := map[string]string{}
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				report.Status = "unavailable"
				report.Checks[c.Name()] = "unavailable"
				var r interface{ Reason() string }
				if errors.As(err, &r) {
					report.Checks[c.Name()] = "unavailable: " + r.Reason()
				}
				logged[c.Name()] = err.Error()
				continue
			}
			report.Checks[c.Name()] = "ok"
		}
		status := http.StatusOK
		if report.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		switch ok := status == http.StatusOK; {
		case !ok && !failing.Swap(true):
			log.WarnContext(ctx, "admin check failing", "path", r.URL.Path, "checks", logged)
		case ok && failing.Swap(false):
			log.InfoContext(ctx, "admin check passing again", "path", r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(report)
	})
}
