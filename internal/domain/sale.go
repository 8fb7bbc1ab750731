package domain

import (
	"time"

	"github.com/google/uuid"
)

// SaleStatus is computed from the sale window and the live stock; it is never stored.
type SaleStatus string

const (
	SaleScheduled SaleStatus = "scheduled"
	SaleActive    SaleStatus = "active"
	SaleSoldOut   SaleStatus = "sold_out"
	SaleEnded     SaleStatus = "ended"
)

// Sale is a time-boxed offer of a fixed stock at one price.
type Sale struct {
	ID           uuid.UUID
	TenantID     uuid.UUID
	Name         string
	PriceCents   int64
	Currency     string
	TotalStock   int
	PerUserLimit int
	StartsAt     time.Time
	EndsAt       time.Time
	// Shards is how many stock shards the inventory is split into (1 to MaxShards; 0 reads as
	// 1). Set at creation, never changed.
	Shards int
	// WaitingRoom, when enabled, puts purchases behind an admission (waiting_room.go).
	WaitingRoom WaitingRoom
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// MaxShards bounds Sale.Shards.
const MaxShards = 64

// ShardCount is s.Shards, 1 when unset.
func (s Sale) ShardCount() int { return max(s.Shards, 1) }

// Validate checks the rules the schema cannot express.
func (s Sale) Validate() error {
	if !s.EndsAt.After(s.StartsAt) {
		return ErrInvalidSaleWindow.WithDetail("endsAt must be after startsAt")
	}
	if s.TotalStock < 1 || s.PerUserLimit < 1 || s.PriceCents < 0 {
		return ErrInvalidRequest.WithDetail("stock and per-user limit must be positive, price not negative")
	}
	if s.Shards < 0 || s.Shards > MaxShards {
		return ErrInvalidRequest.WithDetail("shards must be between 1 and 64")
	}
	return s.WaitingRoom.Validate()
}

// Status is the sale's state at now given the remaining stock.
func (s Sale) Status(now time.Time, remaining int) SaleStatus {
	switch {
	case now.Before(s.StartsAt):
		return SaleScheduled
	case !now.Before(s.EndsAt):
		return SaleEnded
	case remaining <= 0:
		return SaleSoldOut
	default:
		return SaleActive
	}
}

// SalePatch holds the fields an admin changes; nil means unchanged.
type SalePatch struct {
	Name         *string
	PriceCents   *int64
	Currency     *string
	TotalStock   *int
	PerUserLimit *int
	StartsAt     *time.Time
	EndsAt       *time.Time
	WaitingRoom  *WaitingRoom
}

// Apply returns the sale with the patch applied and validated.
func (p SalePatch) Apply(s Sale) (Sale, error) {
	if p.Name != nil {
		s.Name = *p.Name
	}
	if p.PriceCents != nil {
		s.PriceCents = *p.PriceCents
	}
	if p.Currency != nil {
		s.Currency = *p.Currency
	}
	if p.TotalStock != nil {
		s.TotalStock = *p.TotalStock
	}
	if p.PerUserLimit != nil {
		s.PerUserLimit = *p.PerUserLimit
	}
	if p.StartsAt != nil {
		s.StartsAt = p.StartsAt.UTC().Truncate(time.Microsecond)
	}
	if p.EndsAt != nil {
		s.EndsAt = p.EndsAt.UTC().Truncate(time.Microsecond)
	}
	if p.WaitingRoom != nil {
		s.WaitingRoom = *p.WaitingRoom
	}
	return s, s.Validate()
}

// Inventory is the live stock of a sale, as Redis holds it.
type Inventory struct {
	SaleID    uuid.UUID
	TenantID  uuid.UUID
	Total     int
	Remaining int
	// Sold counts every unit taken, Pending those of orders not yet durable.
	Sold    int
	Pending int
	// Seq is the store's reservation number: every reservation takes the next one, so the
	// highest number PostgreSQL's orders carry is a high-water mark the store must not be below.
	// A sharded inventory numbers each shard apart (shard k gives k, k+Shards, ...): Seq is then
	// the highest, and ports.InventoryStore.Behind compares shard by shard.
	Seq int64
	// Shards is how many stock shards the store keeps the inventory in (1 unless sharded).
	Shards int
	// RolledBack: an API node found a reservation it had accepted gone, or Seq below its
	// number, so the store lost reservations (it rolled back); purchases wait until it is
	// rebuilt.
	RolledBack bool
}
