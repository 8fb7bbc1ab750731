package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/ws"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// LiveConfig serves live events at GET /v1/ws.
type LiveConfig struct {
	Hub     *ws.Hub
	Tickets ports.TicketStore
	// Tenant resolves the tenant slug of an anonymous connection (?tenant=, default "default").
	Tenant func(ctx context.Context, slug string) (uuid.UUID, error)
}

// serveLive authenticates the connection before the upgrade: a one-time ticket (?ticket=),
// else the access cookie (or bearer header) read by authenticate, else anonymous (public events
// of ?tenant=). ?sale= (repeatable) subscribes to some sales only.
func serveLive(cfg LiveConfig, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// Before the identity: a one-time ticket is not spent on a node that has no room.
		if cfg.Hub.Full() {
			writeProblem(w, newProblem(ctx, codeUnavailable, "this node holds all the live connections it can; retry"), http.Header{"Retry-After": {"5"}})
			return
		}
		id, err := liveIdentity(ctx, cfg, r)
		if err != nil {
			writeProblem(w, problemOf(ctx, log, err), nil)
			return
		}
		var sales []uuid.UUID
		for _, s := range r.URL.Query()["sale"] {
			saleID, err := uuid.Parse(s)
			if err != nil {
				writeProblem(w, newProblem(ctx, domain.ErrInvalidRequest.Code, "query parameter sale: must be a valid uuid"), nil)
				return
			}
			sales = append(sales, saleID)
		}
		if err := cfg.Hub.Serve(w, r, id, sales); errors.Is(err, ws.ErrFull) {
			writeProblem(w, newProblem(ctx, codeUnavailable, "this node holds all the live connections it can; retry"), http.Header{"Retry-After": {"5"}})
		}
	}
}

func liveIdentity(ctx context.Context, cfg LiveConfig, r *http.Request) (ws.Identity, error) {
	if t := r.URL.Query().Get("ticket"); t != "" {
		p, ok, err := cfg.Tickets.RedeemTicket(ctx, t)
		if err != nil {
			return ws.Identity{}, err
		}
		if !ok {
			return ws.Identity{}, domain.ErrUnauthenticated.WithDetail("the ticket is unknown, used or expired")
		}
		return ws.Identity{TenantID: p.TenantID, UserID: &p.UserID}, nil
	}
	a, _ := ctx.Value(principalKey{}).(authResult)
	switch {
	case a.present && a.err != nil:
		return ws.Identity{}, a.err
	case a.present:
		return ws.Identity{TenantID: a.principal.TenantID, UserID: &a.principal.UserID}, nil
	}
	tenant, err := cfg.Tenant(ctx, r.URL.Query().Get("tenant"))
	return ws.Identity{TenantID: tenant}, err
}
