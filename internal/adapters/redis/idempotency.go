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
)

// Idempotency implements ports.IdempotencyStore: one key per (tenant, user, client key).
type Idempotency struct {
	rdb    goredis.UniversalClient
	prefix string
}

// NewIdempotency stores under prefix (REDIS_PREFIX).
func NewIdempotency(rdb goredis.UniversalClient, prefix string) *Idempotency {
	return &Idempotency{rdb: rdb, prefix: prefix}
}

var _ ports.IdempotencyStore = (*Idempotency)(nil)

func (s *Idempotency) key(sc ports.IdempotencyScope) string {
	return s.prefix + ":idem:" + sc.TenantID.String() + ":" + sc.UserID.String() + ":" + sc.Key
}

type idempotencyRecord struct {
	Fingerprint string        `json:"f"`
	Done        bool          `json:"d"`
	Order       *domain.Order `json:"o,omitempty"`
	ErrCode     domain.Code   `json:"e,omitempty"`
	ErrDetail   string        `json:"m,omitempty"`
}

// Claim implements ports.IdempotencyStore with SET NX GET: claim and read in one round trip.
func (s *Idempotency) Claim(ctx context.Context, sc ports.IdempotencyScope, fingerprint string, lease time.Duration) (*ports.IdempotencyRecord, error) {
	claim, _ := json.Marshal(idempotencyRecord{Fingerprint: fingerprint})
	return decodeClaim(s.rdb.SetArgs(ctx, s.key(sc), claim, goredis.SetArgs{Mode: "NX", Get: true, TTL: lease}))
}

// decodeClaim reads the answer of SET NX GET: nil if the key was free (and is now claimed).
func decodeClaim(cmd *goredis.StatusCmd) (*ports.IdempotencyRecord, error) {
	old, err := cmd.Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	var rec idempotencyRecord
	if err := json.Unmarshal([]byte(old), &rec); err != nil {
		return nil, fmt.Errorf("decode idempotency record: %w", err)
	}
	return &ports.IdempotencyRecord{
		Fingerprint: rec.Fingerprint, Done: rec.Done,
		Outcome: ports.PlaceOrderOutcome{Order: rec.Order, ErrCode: rec.ErrCode, ErrDetail: rec.ErrDetail},
	}, nil
}

// Complete implements ports.IdempotencyStore.
func (s *Idempotency) Complete(ctx context.Context, sc ports.IdempotencyScope, r ports.IdempotencyRecord, ttl time.Duration) error {
	raw, err := json.Marshal(idempotencyRecord{
		Fingerprint: r.Fingerprint, Done: true, Order: r.Outcome.Order, ErrCode: r.Outcome.ErrCode, ErrDetail: r.Outcome.ErrDetail,
	})
	if err != nil {
		return fmt.Errorf("encode idempotency record: %w", err)
	}
	if err := s.rdb.Set(ctx, s.key(sc), raw, ttl).Err(); err != nil {
		return fmt.Errorf("store idempotency record: %w", err)
	}
	return nil
}

// Forget implements ports.IdempotencyStore.
func (s *Idempotency) Forget(ctx context.Context, sc ports.IdempotencyScope) error {
	return s.rdb.Del(ctx, s.key(sc)).Err()
}
