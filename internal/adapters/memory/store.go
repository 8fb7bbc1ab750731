package memory

import (
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Store implements the ports PostgreSQL's Store implements (tenants, users, sales, orders and
// the outbox they write, the consumers' records) on maps, with the schema's rules: unique keys,
// references between rows, and the checks on what a row may hold. Like the database, it refuses
// data that can never be written with an error wrapping domain.ErrPermanent.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	tenants   map[string]domain.Tenant // by slug
	tenantIDs map[uuid.UUID]bool
	users     map[uuid.UUID]domain.User
	sales     map[uuid.UUID]*saleRow
	orders    map[uuid.UUID]domain.Order
	outbox    []*outboxRow // in insertion order
	eventIDs  map[uuid.UUID]bool
	processed map[consumerEvent]bool
	stats     map[uuid.UUID]statsRow   // by sale id
	counters  map[uuid.UUID]counterRow // by sale id
	// broker is the incarnation of the broker the outbox was last published to, first seen
	// at brokerSeen (the outbox_broker table).
	broker     string
	brokerSeen time.Time

	// rowLocks are the sale row locks UpdateSale holds while its update runs (s.mu is not held
	// then, so the update may use the store).
	rowLocks map[uuid.UUID]*sync.Mutex
}

var (
	_ ports.TenantRepository      = (*Store)(nil)
	_ ports.UserRepository        = (*Store)(nil)
	_ ports.SaleRepository        = (*Store)(nil)
	_ ports.OrderRepository       = (*Store)(nil)
	_ ports.Outbox                = (*Store)(nil)
	_ ports.ProcessedEvents       = (*Store)(nil)
	_ ports.SaleStatsRepository   = (*Store)(nil)
	_ ports.SaleCounterRepository = (*Store)(nil)
)

// NewStore keeps time by now (time.Now if nil): the clock PostgreSQL's now() stands for, which
// decides which sales have ended and how old the outbox backlog is.
func NewStore(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now: now, tenants: map[string]domain.Tenant{}, tenantIDs: map[uuid.UUID]bool{},
		users: map[uuid.UUID]domain.User{}, sales: map[uuid.UUID]*saleRow{}, orders: map[uuid.UUID]domain.Order{},
		eventIDs: map[uuid.UUID]bool{}, processed: map[consumerEvent]bool{}, stats: map[uuid.UUID]statsRow{},
		counters: map[uuid.UUID]counterRow{}, rowLocks: map[uuid.UUID]*sync.Mutex{},
	}
}

func (s *Store) clock() time.Time { return pgTime(s.now()) }

// pgTime is t as PostgreSQL's timestamptz keeps it: UTC, to the microsecond.
func pgTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func pgTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := pgTime(*t)
	return &c
}

// refused is the error for data the schema refuses: it can never be written.
func refused(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), domain.ErrPermanent)
}

var (
	slugPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)
