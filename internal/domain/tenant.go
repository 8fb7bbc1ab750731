package domain

import (
	"time"

	"github.com/google/uuid"
)

// DefaultTenantSlug is the merchant created at bootstrap, so single-merchant use needs no setup.
const DefaultTenantSlug = "default"

// Tenant is a merchant: every user, sale and order belongs to exactly one.
type Tenant struct {
	ID        uuid.UUID
	Slug      string
	Name      string
	CreatedAt time.Time
}
