package http

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// LiveClient is who a live connection belongs to: a tenant, and a user when authenticated.
type LiveClient struct {
	TenantID uuid.UUID
	UserID   *uuid.UUID
}

// ErrLiveFull is what a LiveHub's Serve returns when the node has no room for the connection;
// nothing was written, and the edge answers 503.
var ErrLiveFull = errors.New("live connections at capacity")

// LiveHub holds this node's live connections (a WebSocket hub, wired in by the composition root).
type LiveHub interface {
	// Full reports whether the node holds all the connections it can.
	Full() bool
	// Serve upgrades the request and runs the connection until it ends. sales are the initial
	// subscriptions (none: every sale of the tenant). It fails with ErrLiveFull, having written
	// nothing, when the node has no room.
	Serve(w http.ResponseWriter, r *http.Request, c LiveClient, sales []uuid.UUID) error
}

// serveLive authenticates the connection before the upgrade: a one-time ticket (?ticket=),
// else the access cookie (or bearer header) read by authenticate, else anonymous (public events
// of ?tenant=). ?sale= (repeatable) subscribes to some sales only.
func (s *Server) serveLive(hub LiveHub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// Before the identity: a one-time ticket is not spent on a node that has no room.
		if hub.Full() {
			writeLiveFull(ctx, w)
			return
		}
		client, err := s.liveClient(ctx, r)
		if err != nil {
			writeProblem(w, problemOf(ctx, s.log, err), nil)
			return
		}
		var sales []uuid.UUID
		for _, q := range r.URL.Query()["sale"] {
			saleID, err := uuid.Parse(q)
			if err != nil {
				writeProblem(w, newProblem(ctx, domain.ErrInvalidRequest.Code, "query parameter sale: must be a valid uuid"), nil)
				return
			}
			sales = append(sales, saleID)
		}
		switch err := hub.Serve(w, r, client, sales); {
		case errors.Is(err, ErrLiveFull):
			writeLiveFull(ctx, w)
		case err != nil:
			s.log.WarnContext(ctx, "live connection failed", "err", err)
		}
	}
}

func writeLiveFull(ctx context.Context, w http.ResponseWriter) {
	writeProblem(w, newProblem(ctx, codeUnavailable, "this node holds all the live connections it can; retry"),
		http.Header{"Retry-After": {"5"}})
}

func (s *Server) liveClient(ctx context.Context, r *http.Request) (LiveClient, error) {
	if t := r.URL.Query().Get("ticket"); t != "" {
		p, err := s.app.RedeemTicket.Handle(ctx, t)
		if err != nil {
			return LiveClient{}, err
		}
		return LiveClient{TenantID: p.TenantID, UserID: &p.UserID}, nil
	}
	a, _ := ctx.Value(principalKey{}).(authResult)
	switch {
	case a.present && a.err != nil:
		return LiveClient{}, a.err
	case a.present:
		return LiveClient{TenantID: a.principal.TenantID, UserID: &a.principal.UserID}, nil
	}
	t, err := s.app.Tenants.BySlug(ctx, r.URL.Query().Get("tenant"))
	return LiveClient{TenantID: t.ID}, err
}
