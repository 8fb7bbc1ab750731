package memory

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// SaleCache implements ports.SaleCache: copies of sales by tenant and id. Unlike Redis's it
// keeps them until replaced (no TTL: the port promises none).
type SaleCache struct {
	mu    sync.Mutex
	sales map[saleKey]domain.Sale
}

var _ ports.SaleCache = (*SaleCache)(nil)

// NewSaleCache is an empty cache.
func NewSaleCache() *SaleCache { return &SaleCache{sales: map[saleKey]domain.Sale{}} }

// CachedSale implements ports.SaleCache.
func (c *SaleCache) CachedSale(_ context.Context, tenantID, saleID uuid.UUID) (domain.Sale, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sales[saleKey{tenantID, saleID}]
	return s, ok, nil
}

// FillSale implements ports.SaleCache.
func (c *SaleCache) FillSale(_ context.Context, s domain.Sale) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.sales[saleKey{s.TenantID, s.ID}]; !ok {
		c.sales[saleKey{s.TenantID, s.ID}] = s
	}
	return nil
}

// ReplaceSale implements ports.SaleCache.
func (c *SaleCache) ReplaceSale(_ context.Context, s domain.Sale) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sales[saleKey{s.TenantID, s.ID}] = s
	return nil
}
