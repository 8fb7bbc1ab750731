package http

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/openapi"
)

// RouterConfig tunes the HTTP edge.
type RouterConfig struct {
	// MaxBodyBytes caps request bodies (413 beyond).
	MaxBodyBytes int64
	Edge         EdgeConfig
	// Metrics, if set, is served at GET /metrics.
	Metrics http.Handler
	// Observer, if set, is told of every request answered.
	Observer RequestObserver
	// Live, if set, serves live events at GET /v1/ws.
	Live LiveHub
	// Storefront, if set, is served at / (index.html and assets/).
	Storefront fs.FS
	// Docs, if set, is Swagger UI served at /docs (index.html, init.js and swagger-ui/).
	Docs fs.FS
}

// NewRouter assembles the HTTP API: request id, logging, panic recovery, security headers,
// CORS and cross-origin protection for everything; rate limits, body cap, authentication and
// spec validation in front of every generated handler.
func NewRouter(srv *Server, auth Authenticator, edge EdgeGate, log *slog.Logger, cfg RouterConfig) (http.Handler, error) {
	validator, err := validate(log)
	if err != nil {
		return nil, err
	}
	origins, err := corsAndCSRF(cfg.Edge)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, traceRequests)
	if cfg.Observer != nil {
		observe, err := observeRequests(cfg.Observer)
		if err != nil {
			return nil, err
		}
		r.Use(observe)
	}
	r.Use(answerErrorsAsProblems, accessLog(log), recoverPanics(log), securityHeaders(cfg.Edge.HSTS),
		middleware.GetHead, limitHeaders, refuseUnstorableText, origins)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(r.Context(), codeNotFound, "no such resource"), nil)
	})
	mux := r
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		// A 405 must list the methods the resource supports (RFC 9110, section 15.5.6).
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if mux.Match(chi.NewRouteContext(), m, path) {
				allowed = append(allowed, m)
				if m == http.MethodGet { // middleware.GetHead answers HEAD wherever GET is
					allowed = append(allowed, http.MethodHead)
				}
			}
		}
		writeProblem(w, newProblem(r.Context(), codeMethodNotAllowed, r.Method+" is not allowed here"),
			http.Header{"Allow": {strings.Join(allowed, ", ")}})
	})
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics)
	}
	r.Get("/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapi.Spec)
	})

	strict := api.NewStrictHandlerWithOptions(srv, []api.StrictMiddlewareFunc{nameSpans}, api.StrictHTTPServerOptions{
		// Reached only when the body passed validation but does not decode (it should not).
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, newProblem(r.Context(), domain.ErrInvalidRequest.Code, "request body: "+decodeReason(err)), nil)
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, problemOf(r.Context(), log, err), nil)
		},
	})
	if cfg.Storefront != nil {
		mountStorefront(r, cfg.Storefront)
	}
	if cfg.Docs != nil {
		mountDocs(r, cfg.Docs)
	}
	if cfg.Live != nil {
		r.With(authenticate(auth), gate(edge, cfg.Edge, log)).Get("/v1/ws", srv.serveLive(cfg.Live))
	}
	r.Group(func(r chi.Router) {
		r.Use(limitBody(cfg.MaxBodyBytes), authenticate(auth), gate(edge, cfg.Edge, log), validator)
		api.HandlerWithOptions(strict, api.ChiServerOptions{
			BaseRouter: r,
			ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
				writeProblem(w, newProblem(r.Context(), domain.ErrInvalidRequest.Code, err.Error()), nil)
			},
		})
	})
	return r, nil
}

func decodeReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "malformed JSON"
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	}
	return "cannot be decoded"
}
