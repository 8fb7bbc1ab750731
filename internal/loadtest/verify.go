package loadtest

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Purchase is one purchase as the verifier sees it, for drivers other than Runner (the chaos
// suite drives its own load around the faults it injects): the buyer (an index, one per user),
// the units asked for, and the answer: a status, and the order id of a 202, or Err when no
// answer came.
type Purchase struct {
	User     int
	Quantity int
	Status   int
	OrderID  uuid.UUID
	Err      error
}

// Verify checks a sale against the API (cfg.URLs[0]) and PostgreSQL (cfg.DatabaseURL) once, with
// the checks Run makes after a run, but without waiting for the queue to drain: a caller that
// waits for convergence polls it. cfg.Stock, cfg.Limit and cfg.Quantity describe the sale.
func Verify(ctx context.Context, cfg Config, saleID uuid.UUID, began time.Time, purchases []Purchase) (Report, error) {
	cfg.defaults()
	cfg.DrainTimeout = time.Nanosecond // one look
	if len(cfg.URLs) == 0 {
		return Report{}, errors.New("loadtest: no API URL")
	}
	r := &Runner{cfg: cfg, c: newClient(cfg.URLs[:1], 2)}
	defer r.c.http.CloseIdleConnections()
	results := make([]result, len(purchases))
	for i, p := range purchases {
		results[i] = result{user: p.User, qty: p.Quantity, status: p.Status, orderID: p.OrderID, err: p.Err}
	}
	rep := r.summarise(results)
	rep.Label, rep.Mode, rep.Stock, rep.Limit, rep.PoolSize = cfg.Label, cfg.Mode, cfg.Stock, cfg.Limit, cfg.PoolSize
	err := r.verify(ctx, saleID, began, results, &rep)
	return rep, err
}
