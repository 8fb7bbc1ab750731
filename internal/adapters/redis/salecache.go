package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// SaleCache implements ports.SaleCache: sale details as JSON, cache-aside, replaced the moment
// an admin changes the sale, with a TTL as a safety net.
type SaleCache struct {
	rdb    goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewSaleCache stores under prefix (REDIS_PREFIX) for ttl.
func NewSaleCache(rdb goredis.UniversalClient, prefix string, ttl time.Duration) *SaleCache {
	return &SaleCache{rdb: rdb, prefix: prefix, ttl: ttl}
}

var _ ports.SaleCache = (*SaleCache)(nil)

func (c *SaleCache) key(tenantID, saleID uuid.UUID) string {
	return c.prefix + ":sale:" + tenantID.String() + ":" + saleID.String()
}

// CachedSale implements ports.SaleCache.
func (c *SaleCache) CachedSale(ctx context.Context, tenantID, saleID uuid.UUID) (_ domain.Sale, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	raw, err := c.rdb.Get(ctx, c.key(tenantID, saleID)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return domain.Sale{}, false, nil
	}
	if err != nil {
		return domain.Sale{}, false, fmt.Errorf("read cached sale: %w", err)
	}
	var s domain.Sale
	if err := json.Unmarshal(raw, &s); err != nil {
		return domain.Sale{}, false, fmt.Errorf("decode cached sale: %w", err)
	}
	return s, true, nil
}

// FillSale implements ports.SaleCache.
func (c *SaleCache) FillSale(ctx context.Context, s domain.Sale) (err error) {
	defer func() { err = unavailable(err) }()
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode sale: %w", err)
	}
	return c.rdb.SetNX(ctx, c.key(s.TenantID, s.ID), raw, c.ttl).Err()
}

// ReplaceSale implements ports.SaleCache.
func (c *SaleCache) ReplaceSale(ctx context.Context, s domain.Sale) (err error) {
	defer func() { err = unavailable(err) }()
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode sale: %w", err)
	}
	return c.rdb.Set(ctx, c.key(s.TenantID, s.ID), raw, c.ttl).Err()
}
