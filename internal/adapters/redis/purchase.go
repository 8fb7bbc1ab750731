package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/lua"
)

// Purchases implements ports.PurchaseStore: the idempotency claim and the reservation script in
// one pipeline, one round trip instead of two.
type Purchases struct {
	idem *Idempotency
	inv  *Inventory
}

// NewPurchases combines the idempotency and inventory stores, which must share a client.
func NewPurchases(idem *Idempotency, inv *Inventory) *Purchases {
	return &Purchases{idem: idem, inv: inv}
}

var _ ports.PurchaseStore = (*Purchases)(nil)

// ClaimAndReserve implements ports.PurchaseStore.
func (p *Purchases) ClaimAndReserve(ctx context.Context, sc ports.IdempotencyScope, fingerprint string, lease time.Duration,
	r domain.Reservation) (*ports.IdempotencyRecord, ports.ReserveResult, error, error) {
	claim, _ := json.Marshal(idempotencyRecord{Fingerprint: fingerprint})
	k := p.inv.keysOf(r.TenantID, r.SaleID)
	keys := []string{k.inv, k.buyers, k.keys, k.res, k.awaited}
	args := []any{r.OrderID.String(), r.UserID.String(), r.Quantity, r.IdempotencyKey}
	var claimCmd *goredis.StatusCmd
	var reserveCmd *goredis.Cmd
	_, err := p.inv.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		claimCmd = pipe.SetArgs(ctx, p.idem.key(sc), claim, goredis.SetArgs{Mode: "NX", Get: true, TTL: lease})
		reserveCmd = reserveScript.EvalSha(ctx, pipe, keys, args...)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) && !isNoScript(reserveCmd.Err()) {
		return nil, ports.ReserveResult{}, nil, fmt.Errorf("claim and reserve: %w", err)
	}
	existing, err := decodeClaim(claimCmd)
	if err != nil {
		return nil, ports.ReserveResult{}, nil, err
	}
	if isNoScript(reserveCmd.Err()) { // first use since Redis started: load it, then run it alone
		res, rerr := p.inv.Reserve(ctx, r)
		return existing, res, rerr, nil
	}
	reply, err := reserveCmd.StringSlice()
	if err != nil {
		return nil, ports.ReserveResult{}, nil, fmt.Errorf("reserve script: %w", err)
	}
	res, rerr := p.inv.reserveOutcome(r, reply)
	return existing, res, rerr, nil
}

func isNoScript(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT")
}

var discardScript = goredis.NewScript(lua.Discard)

// Discard implements ports.PurchaseStore.
func (p *Purchases) Discard(ctx context.Context, r domain.Reservation) (bool, error) {
	k := p.inv.keysOf(r.TenantID, r.SaleID)
	n, err := discardScript.Run(ctx, p.inv.rdb, []string{k.inv, k.buyers, k.keys, k.res, k.awaited}, r.OrderID.String()).Int()
	if err != nil {
		return false, fmt.Errorf("discard reservation: %w", err)
	}
	return n == 1, nil
}
