package http

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/ports"
)

// GetOverview implements api.StrictServerInterface: the control room's figures.
func (s *Server) GetOverview(ctx context.Context, _ api.GetOverviewRequestObject) (api.GetOverviewResponseObject, error) {
	o, at, err := s.app.GetOverview.Handle(ctx, mustPrincipal(ctx))
	if err != nil {
		return s.fail(ctx, err), nil
	}
	return api.GetOverview200JSONResponse{Body: toAPIOverview(o, at)}, nil
}

// purchaseOutcomes are the spec's outcomes, in the order the overview lists them.
var purchaseOutcomes = []api.PurchaseCountOutcome{
	api.PurchaseCountOutcomeAccepted, api.PurchaseCountOutcomeReplayed, api.PurchaseCountOutcomeSoldOut,
	api.PurchaseCountOutcomeLimit, api.PurchaseCountOutcomeNotActive, api.PurchaseCountOutcomeRateLimited,
	api.PurchaseCountOutcomeRejected, api.PurchaseCountOutcomeFailed,
}

func toAPIOverview(o ports.Overview, at time.Time) api.Overview {
	out := api.Overview{
		MeasuredAt:      at,
		Purchases:       make([]api.PurchaseCount, 0, len(purchaseOutcomes)),
		PurchaseLatency: toAPIHistogram(o.PurchaseLatency),
		Queue: api.QueueDepth{
			Name: o.Queue.Name, Pending: o.Queue.Pending, Active: o.Queue.Active, Scheduled: o.Queue.Scheduled,
			Retry: o.Queue.Retry, DeadLetters: o.Queue.Archived, OldestPendingSeconds: o.Queue.OldestPending.Seconds(),
			Measured: o.Queue.Measured,
		},
		Drift: make([]api.SaleDrift, 0, len(o.Drift)),
	}
	for _, outcome := range purchaseOutcomes {
		out.Purchases = append(out.Purchases, api.PurchaseCount{Outcome: outcome, Total: int64(o.Purchases[string(outcome)])})
	}
	out.Durable.Measured = o.DurableMeasured
	out.Durable.Latency = toAPIHistogram(o.Durable)
	for id, units := range o.Drift {
		out.Drift = append(out.Drift, api.SaleDrift{SaleId: id, Units: units})
	}
	slices.SortFunc(out.Drift, func(a, b api.SaleDrift) int { return strings.Compare(a.SaleId.String(), b.SaleId.String()) })
	return out
}

func toAPIHistogram(h ports.Histogram) api.Histogram {
	out := api.Histogram{Count: int64(h.Count), SumSeconds: h.Sum, Buckets: make([]struct {
		Count int64   `json:"count"`
		Le    float64 `json:"le"`
	}, 0, len(h.Bounds))}
	for i, le := range h.Bounds {
		out.Buckets = append(out.Buckets, struct {
			Count int64   `json:"count"`
			Le    float64 `json:"le"`
		}{Count: int64(h.Buckets[i]), Le: le})
	}
	return out
}
