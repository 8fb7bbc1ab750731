// Package ports declares the outbound interfaces the use-cases in internal/app depend on; the
// packages under internal/adapters implement them with PostgreSQL, Redis, Asynq and friends.
package ports

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// TenantRepository stores merchants.
type TenantRepository interface {
	// EnsureTenant returns the tenant with slug, creating it if it does not exist.
	EnsureTenant(ctx context.Context, slug, name string) (domain.Tenant, error)
	// TenantBySlug fails with domain.ErrTenantNotFound.
	TenantBySlug(ctx context.Context, slug string) (domain.Tenant, error)
}

// UserRepository stores accounts.
type UserRepository interface {
	// CreateUser fails with domain.ErrEmailTaken if the tenant already has the address.
	CreateUser(ctx context.Context, u domain.User) error
	// UserByEmail and UserByID fail with domain.ErrUserNotFound.
	UserByEmail(ctx context.Context, tenantID uuid.UUID, email string) (domain.User, error)
	UserByID(ctx context.Context, tenantID, id uuid.UUID) (domain.User, error)
	// ReplacePasswordHash sets the user's password hash to newHash if it still is oldHash (a
	// rehash at login races no other change of it). replaced is false when it was not: the hash
	// changed meanwhile, or there is no such user in the tenant.
	ReplacePasswordHash(ctx context.Context, tenantID, id uuid.UUID, oldHash, newHash string) (replaced bool, err error)
}

// SaleFilter narrows ListSales. Status filtering happens above the store: it needs live stock.
type SaleFilter struct {
	// EndedOnly lists sales whose end is past; otherwise only sales not yet ended are listed.
	EndedOnly bool
	// Any lists every sale, newest first.
	Any   bool
	Limit int
}

// SaleRef names a sale across tenants, for background sweeps.
type SaleRef struct {
	TenantID uuid.UUID
	SaleID   uuid.UUID
}

// SaleRepository stores sales.
type SaleRepository interface {
	CreateSale(ctx context.Context, s domain.Sale) error
	// Sale fails with domain.ErrSaleNotFound, also for a sale of another tenant.
	Sale(ctx context.Context, tenantID, id uuid.UUID) (domain.Sale, error)
	ListSales(ctx context.Context, tenantID uuid.UUID, f SaleFilter) ([]domain.Sale, error)
	// UpdateSale runs update on the locked sale inside a transaction and stores what it returns;
	// an error from update rolls everything back.
	UpdateSale(ctx context.Context, tenantID, id uuid.UUID,
		update func(ctx context.Context, s domain.Sale) (domain.Sale, error)) (domain.Sale, error)
	// LiveSales lists the sales that may still hold reservations: open, or ended after since.
	LiveSales(ctx context.Context, since time.Time) ([]SaleRef, error)
	// TenantLiveSaleIDs is LiveSales for one tenant.
	TenantLiveSaleIDs(ctx context.Context, tenantID uuid.UUID, since time.Time) ([]uuid.UUID, error)
	// CloseSales marks the sales ended before cutoff as closed, out of the active index.
	CloseSales(ctx context.Context, cutoff time.Time) (int64, error)
	// SoldUnits is the number of units in durable (confirmed) orders of the sale.
	SoldUnits(ctx context.Context, tenantID, saleID uuid.UUID) (int, error)
}

// OrderCursor is the keyset position after which a page of orders starts.
type OrderCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// OrderRepository stores durable orders.
type OrderRepository interface {
	// SaveOrder writes the order once: saving the same order again is a no-op that reports
	// created=false. A confirmed order replaces a failed one with the same id. The events go
	// into the outbox exactly as given, committed with the order or not at all, and only when
	// the row was inserted or replaced, so a redelivered save adds no second event. Which
	// events go with an order is the caller's rule, never the repository's. An order that can
	// never be written (its idempotency key taken by another order, an unknown sale or user,
	// an event refused) fails with an error wrapping domain.ErrPermanent. Every other failure
	// (the database down, a connection lost, read-only, a timeout) is transient: returned as an
	// error to retry, never reported as a write.
	SaveOrder(ctx context.Context, o domain.Order, events ...domain.Event) (created bool, err error)
	// Order fails with domain.ErrOrderNotFound.
	Order(ctx context.Context, tenantID, id uuid.UUID) (domain.Order, error)
	// ListOrders pages through a user's orders, newest first, after the cursor if given.
	ListOrders(ctx context.Context, tenantID, userID uuid.UUID, after *OrderCursor, limit int) ([]domain.Order, error)
	// SaleOrders lists a sale's durable orders, confirmed and failed, oldest first: what holds
	// its stock (the confirmed ones) and its buyers' idempotency keys.
	SaleOrders(ctx context.Context, tenantID, saleID uuid.UUID) ([]domain.Order, error)
	// ConfirmedOrderIDs reports which of ids are durable and confirmed.
	ConfirmedOrderIDs(ctx context.Context, tenantID uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error)
	// ReservationHighWaters are the sale's orders with the highest reservation number
	// (domain.Order.ReservationSeq), one per shard of its inventory (a number modulo shards
	// names its shard; see domain.Inventory.Seq), highest first; none for a shard without
	// numbered orders.
	ReservationHighWaters(ctx context.Context, tenantID, saleID uuid.UUID, shards int) ([]HighWater, error)
}

// ReserveResult is what an accepted reservation left in the inventory.
type ReserveResult struct {
	Reservation domain.Reservation
	// Duplicate: the (user, idempotency key) pair had already reserved; Reservation is that one.
	Duplicate bool
	Remaining int
}

// InventoryStore is the source of truth for stock: atomic check-and-reserve, never oversold.
type InventoryStore interface {
	// SyncSale creates the sale's inventory, or applies a changed stock, limit or window to it
	// atomically. soldHint seeds the sold count when the inventory is created; a total below the
	// units already sold fails with domain.ErrStockBelowSold and changes nothing.
	SyncSale(ctx context.Context, s domain.Sale, soldHint int) (domain.Inventory, error)
	// Inventory reads the live stock; ok is false if the store does not know the sale.
	Inventory(ctx context.Context, tenantID, saleID uuid.UUID) (inv domain.Inventory, ok bool, err error)
	// Inventories reads the live stock of many sales in one round trip.
	Inventories(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID) (map[uuid.UUID]domain.Inventory, error)
	// Reserve checks the window, idempotency, per-user limit and stock and takes the stock, all
	// atomically, recording the reservation. It fails with domain.ErrSoldOut,
	// ErrInsufficientStock, ErrSaleNotActive, ErrPurchaseLimitExceeded, or ErrSaleNotFound when
	// the store does not know the sale (SyncSale it and try again), or ErrUnavailable while a
	// restored inventory is fenced or a rolled-back one awaits its rebuild (see RestoreSale). The
	// reservation takes the sale's next number (Seq). A store that can roll back remembers the
	// last reservation it accepted in each sale and, finding it gone or the sale's number below
	// it, marks the inventory RolledBack and refuses; after a rebuild (RestoreSale) it refuses the
	// next purchase once too. Both refusals wrap ErrRolledBack.
	Reserve(ctx context.Context, r domain.Reservation) (ReserveResult, error)
	// Reservation reads one reservation; ok is false if there is none.
	Reservation(ctx context.Context, tenantID, saleID, orderID uuid.UUID) (r domain.Reservation, ok bool, err error)
	// FindReservation looks for orderID among the reservations of several sales.
	FindReservation(ctx context.Context, tenantID uuid.UUID, saleIDs []uuid.UUID, orderID uuid.UUID) (r domain.Reservation, ok bool, err error)
	// MarkConfirmed records that the order is durable; it is no longer awaited.
	MarkConfirmed(ctx context.Context, r domain.Reservation) error
	// Release gives a pending reservation's stock and per-user allowance back and marks it
	// failed, atomically; released is false if it was not pending.
	Release(ctx context.Context, r domain.Reservation) (released bool, err error)
	// Rereserve takes the stock of a failed reservation again and marks it pending (a dead letter
	// retried); it fails like Reserve, ignoring the sale window, or with ErrOrderNotRetryable.
	Rereserve(ctx context.Context, r domain.Reservation) (domain.Reservation, error)
	// Adopt takes the stock of an accepted order whose reservation the store lost (it restarted
	// empty or rolled back, and the order reached the worker anyway), as Rereserve does: the
	// stock and the per-user limit are checked, not the window nor a restore's fence. It records
	// the reservation pending and awaited and reports adopted=true; a reservation the store has
	// is returned as it is. It fails with domain.ErrSaleNotFound when the store has no inventory
	// for the sale (RestoreSale it), or with ErrSoldOut, ErrInsufficientStock,
	// ErrPurchaseLimitExceeded: the order cannot be kept without overselling, or with
	// ErrUnavailable while the inventory is marked RolledBack (retry after its rebuild).
	Adopt(ctx context.Context, r domain.Reservation) (res domain.Reservation, adopted bool, err error)
	// RestoreSale recreates the inventory of a sale the store lost or rolled back, from the sale
	// and its durable orders, when the store has no inventory for the sale, or its inventory is
	// marked RolledBack, or is behind high (see HighWater); otherwise it changes nothing and
	// returns the inventory with Restored false. A confirmed order holds its units, its buyer's allowance and its idempotency key, recorded confirmed; a
	// failed one only its key, recorded failed. Pending reservations the store still holds and
	// the orders lack (accepted, on their way to PostgreSQL) keep their stock, oldest first, as
	// far as the stock goes; newer ones beyond it were sold twice by the rolled-back store and
	// are marked failed (Dropped). The next reservation numbers start above any the store gave
	// before. Purchases are refused with domain.ErrUnavailable until fence (the zero time: not
	// fenced), so that orders accepted before the loss are adopted first. A total below the
	// confirmed orders' units fails with domain.ErrStockBelowSold.
	RestoreSale(ctx context.Context, s domain.Sale, orders []domain.Order, high HighWater, fence time.Time) (Restored, error)
	// Fence refuses the sale's purchases (domain.ErrUnavailable) until until, or a later fence
	// already set; a sale the store does not know is left alone.
	Fence(ctx context.Context, tenantID, saleID uuid.UUID, until time.Time) error
	// AwaitedReservations lists pending reservations of a sale not confirmed since before.
	AwaitedReservations(ctx context.Context, tenantID, saleID uuid.UUID, before time.Time, limit int) ([]domain.Reservation, error)
	// SettleTransfers finishes the moves of stock between the shards of a sharded sale
	// (domain.Sale.Shards) that were cut short (given by one shard, not taken by the other, for
	// a few seconds), and reports how many it finished; a sale in one shard has none.
	SettleTransfers(ctx context.Context, tenantID, saleID uuid.UUID) (int, error)
}

// StoreEpoch marks an inventory store that holds every live sale's inventory. A store that lost
// its data (restarted empty, flushed) loses the mark with it, and has none until a whole pass
// over the live sales has checked, and rebuilt where needed, each of them (Stock.Check): until
// then the roles that sell from it are not ready.
type StoreEpoch interface {
	// BeginCheck starts a pass; its token is the proof, at Stamp, that the store kept its data
	// through the pass.
	BeginCheck(ctx context.Context) (token string, err error)
	// Stamp marks the store as holding the live sales, if the pass's token is still there;
	// false: the store lost it (and its data) during the pass, which must be made again.
	Stamp(ctx context.Context, token string) (bool, error)
	// Held reports whether the store has the mark.
	Held(ctx context.Context) (bool, error)
}

// Dispatcher is the order queue of the purchase path (adapters/dispatch): it hands accepted
// orders to the OrderQueue and remembers them for a while.
type Dispatcher interface {
	OrderQueue
	// Recent lists the orders of the sale this node accepted lately, oldest first: when the
	// inventory store rolled back (ErrRolledBack), their reservations and queued tasks may be
	// gone, and this node holds the only other copy.
	Recent(tenantID, saleID uuid.UUID) []domain.Reservation
}

// ErrRolledBack is joined to the domain.ErrUnavailable of a purchase that found the inventory
// store lost reservations this node accepted: it rolled back, or it was rebuilt since (see
// InventoryStore.Reserve). Told once per loss; the node then takes its recent orders again.
var ErrRolledBack = errors.New("the inventory store rolled back")

// HighWater is the reservation with the highest number that PostgreSQL holds an order for (in
// one shard of a sharded sale). An inventory store whose number is below Seq, or that no longer
// has that order's reservation, lost reservations it had made: it rolled back (numbers given
// since may reach Seq again, hence the order id).
type HighWater struct {
	Seq     int64
	OrderID uuid.UUID
}

// Restored is what InventoryStore.RestoreSale did.
type Restored struct {
	Inventory domain.Inventory
	// Restored: the inventory was recreated now; false: the store's was current, and is kept.
	Restored bool
	// Dropped are accepted orders the rolled-back store had sold beyond the stock, now failed.
	Dropped []uuid.UUID
}

// IdempotencyScope is one client key: unique per user within a tenant.
type IdempotencyScope struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Key      string
}

// IdempotencyRecord is what the store remembers of a key.
type IdempotencyRecord struct {
	// Fingerprint identifies the request the key was first used with.
	Fingerprint string
	// Done: the first request finished and Outcome is its answer; otherwise it is in flight.
	Done    bool
	Outcome PlaceOrderOutcome
}

// PlaceOrderOutcome is a purchase answer worth replaying: an order, or an expected refusal.
type PlaceOrderOutcome struct {
	Order     *domain.Order
	ErrCode   domain.Code
	ErrDetail string
}

// Purchase is one shopper's attempt to buy, as the purchase store takes it.
type Purchase struct {
	// Scope is the client's idempotency key; Fingerprint identifies the request it stands for.
	Scope       IdempotencyScope
	Fingerprint string
	// Lease bounds how long the claim keeps the key busy if the request dies mid-way.
	Lease time.Duration
	// Reservation is what to take: order id, sale, buyer, quantity, key.
	Reservation domain.Reservation
	// TTL is how long a store that records answers itself (PurchaseOutcome.Recorded) keeps a
	// final one for replay.
	TTL time.Duration
	// Gate, if set, is the HTTP edge's checks done in the purchase's own round trip (a store
	// that takes them: GateInPurchase).
	Gate PurchaseGate
	// Admission: the sale has a waiting room, so the buyer must hold a live admission, which the
	// purchase spends only if it takes stock (a store that does it: AdmissionInPurchase). Without
	// one: domain.ErrAdmissionRequired, the key left free, nothing taken.
	Admission bool
}

// PurchaseGate is what the HTTP edge asks of every purchase, left to the purchase store so that
// it costs no round trip of its own: is the caller's session alive (SessionID; uuid.Nil: not
// asked), and is the client within its rate limit (RateKey, PerMinute; 0: no limit). A refusal
// takes nothing and records nothing: domain.ErrUnauthenticated, or ErrRateLimited with the
// decision in PurchaseOutcome.Rate.
type PurchaseGate struct {
	SessionID uuid.UUID
	RateKey   string
	PerMinute int
}

// IsZero reports whether the gate asks nothing.
func (g PurchaseGate) IsZero() bool { return g == PurchaseGate{} }

// RateDecision is a rate limit's answer for one request (GCRA: a burst of PerMinute, refilled
// over a minute).
type RateDecision struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
}

// PurchaseOutcome is what a purchase found or took: Known, or else Reserved.
type PurchaseOutcome struct {
	// Known is the key's record when the key was in use before this request: the answer is a
	// replay of it (or "in flight"), and this request took nothing.
	Known *IdempotencyRecord
	// Reserved is the accepted reservation: taken now, or (Duplicate) the one this buyer's key
	// already holds in the sale.
	Reserved ReserveResult
	// Recorded: the store itself recorded a final answer for replay (for Purchase.TTL) or, for
	// any other answer, left the key free; the caller neither Completes nor Forgets the key.
	Recorded bool
	// Rate is the rate limit's decision when the purchase's gate asked for one.
	Rate *RateDecision
}

// PurchaseStore takes purchases: the idempotency claim and the reservation are one step, so a
// purchase whose key was already in use takes no stock, and one whose key was free holds it.
type PurchaseStore interface {
	// Purchase claims p's key for p.Lease and, if the key was free, reserves p.Reservation as
	// InventoryStore.Reserve does. A refusal (domain.ErrSoldOut, ErrInsufficientStock,
	// ErrSaleNotActive, ErrPurchaseLimitExceeded) keeps the claim for the caller to Complete or
	// Forget. A sale the store does not know fails with domain.ErrSaleNotFound and leaves the
	// key unclaimed (SyncSale it and try again). Any other error is a failure of the store: the
	// claim and the reservation may or may not have been made.
	Purchase(ctx context.Context, p Purchase) (PurchaseOutcome, error)
	// Complete stores the answer to a claimed key, for replays, for ttl.
	Complete(ctx context.Context, s IdempotencyScope, rec IdempotencyRecord, ttl time.Duration) error
	// Forget drops a claim whose request left nothing behind, so the key can be used again.
	Forget(ctx context.Context, s IdempotencyScope) error
	// Lookup reads the live record of a key, claimed or completed, without claiming it (false
	// when the key is free): a purchase of a sale known sold out takes no claim. A session
	// (not uuid.Nil; a store that takes gates: GateInPurchase) is checked in the same step:
	// domain.ErrUnauthenticated when it has ended.
	// The key is also looked up in the sale (saleID), where the store records it: a purchase
	// that took stock but whose answer was lost (its claim freed after the error) is found there
	// and answered with its order.
	Lookup(ctx context.Context, s IdempotencyScope, saleID, session uuid.UUID) (IdempotencyRecord, bool, error)
	// GateInPurchase reports whether Purchase and Lookup take the edge's checks (Purchase.Gate)
	// in their own round trip; if not, the edge makes them first.
	GateInPurchase() bool
	// AdmissionInPurchase reports whether Purchase spends a waiting room's admission itself
	// (Purchase.Admission); if not, the waiting room spends it before the purchase.
	AdmissionInPurchase() bool
}

// ErrAlreadyQueued: a task for the order exists (queued, retrying or dead-lettered).
var ErrAlreadyQueued = errors.New("order task already exists")

// TaskState is where an order's task is in the queue.
type TaskState string

const (
	TaskAbsent   TaskState = "absent"
	TaskQueued   TaskState = "queued"
	TaskArchived TaskState = "archived"
)

// Nodes tracks the API nodes that hold accepted orders in memory on their way to the queue
// (each reservation names its node), so that what a dead node held is queued within seconds.
type Nodes interface {
	// Dead lists the nodes that joined and whose lease ran out without their leaving.
	Dead(ctx context.Context) ([]string, error)
	// Forget drops a dead node once what it held is queued.
	Forget(ctx context.Context, node string) error
}

// OrderQueue carries reservations to the worker that writes them to PostgreSQL.
type OrderQueue interface {
	// EnqueueOrder queues the order once: a second call for the same order fails with
	// ErrAlreadyQueued while its task exists.
	EnqueueOrder(ctx context.Context, r domain.Reservation) error
	OrderTaskState(ctx context.Context, orderID uuid.UUID) (TaskState, error)
	// StrandedOrders lists up to limit order tasks the queue holds as running although no
	// worker has held them for a while (their worker stopped renewing its lease): the worker
	// died, or a Redis failover lost the end of the task. The queue runs them again only after
	// minutes; the reconciler writes them at once (WriteOrder is idempotent).
	StrandedOrders(ctx context.Context, limit int) ([]domain.Reservation, error)
	// DeadLetters lists the tenant's archived order tasks, newest first.
	DeadLetters(ctx context.Context, tenantID uuid.UUID, limit int) ([]domain.DeadLetter, error)
	// DeadLetter reads one archived task; it fails with domain.ErrOrderNotFound.
	DeadLetter(ctx context.Context, orderID uuid.UUID) (domain.DeadLetter, error)
	// RunDeadLetter moves an archived task back to the queue.
	RunDeadLetter(ctx context.Context, orderID uuid.UUID) error
}

// SaleCache holds sale details, cache-aside; the inventory is never cached.
type SaleCache interface {
	// CachedSale returns ok=false on a miss.
	CachedSale(ctx context.Context, tenantID, saleID uuid.UUID) (s domain.Sale, ok bool, err error)
	// FillSale caches s after a miss unless the entry was set meanwhile, so a reader holding an
	// older copy never overwrites the one an admin's change put there.
	FillSale(ctx context.Context, s domain.Sale) error
	// ReplaceSale puts a changed sale in the cache at once, replacing the old copy.
	ReplaceSale(ctx context.Context, s domain.Sale) error
}

// PasswordHasher hashes and checks passwords.
type PasswordHasher interface {
	Hash(password string) (string, error)
	// Verify reports whether password matches hash; a malformed hash is an error. It takes at
	// least the time of one check against a hash Hash makes today, whatever parameters hash was
	// made with, so an account hashed before the cost was raised answers a wrong password no
	// faster than a new one, or than an address with no account (checked against a dummy hash).
	Verify(hash, password string) (bool, error)
	// NeedsRehash reports whether hash was made with other parameters than Hash uses today (an
	// older cost): the login that proves the password replaces it.
	NeedsRehash(hash string) bool
}

// TokenIssuer issues and verifies access tokens.
type TokenIssuer interface {
	Issue(p domain.Principal) (token string, ttl time.Duration, err error)
	// Verify fails with domain.ErrUnauthenticated for any token it did not issue or that expired.
	Verify(token string) (domain.Principal, error)
}

// SessionStore keeps login sessions: the current refresh token of each (as a hash) and the
// sessions of each user, so that any of them can be revoked at once.
type SessionStore interface {
	CreateSession(ctx context.Context, s domain.Session, refreshHash string, ttl time.Duration) error
	// RotateRefresh replaces the session's refresh hash presented by next, atomically. A hash that
	// was current before is a rotated token replayed: the session is revoked and
	// domain.ErrRefreshTokenReused returned. Any other hash, or an unknown or expired session,
	// fails with domain.ErrInvalidRefreshToken and changes nothing.
	RotateRefresh(ctx context.Context, sessionID uuid.UUID, presented, next string, ttl time.Duration) (domain.Session, error)
	SessionActive(ctx context.Context, sessionID uuid.UUID) (bool, error)
	RevokeSession(ctx context.Context, sessionID uuid.UUID) error
	// RevokeUserSessions revokes every session of the user and says how many there were.
	RevokeUserSessions(ctx context.Context, tenantID, userID uuid.UUID) (int, error)
}

// EventPublisher delivers events to the message broker.
type EventPublisher interface {
	// Publish returns nil only once the broker acknowledged every event.
	Publish(ctx context.Context, events []domain.Event) error
}

// Outbox holds the events written with the changes they report, until they are published.
type Outbox interface {
	// RelayPending claims up to limit unpublished events, oldest first (skipping any another
	// relay holds), hands them to publish, and marks them published if it returned nil or
	// records the failure (and returns it) otherwise. It returns how many were published.
	RelayPending(ctx context.Context, limit int, publish func(context.Context, []domain.Event) error) (int, error)
	// Backlog is how many events wait and how old the oldest is.
	Backlog(ctx context.Context) (pending int, oldest time.Duration, err error)
}

// BrokerWatcher tells which log the message broker holds.
type BrokerWatcher interface {
	// Incarnation names the log the broker holds now. It changes only when the broker lost
	// every event it had acknowledged (an in-memory broker restarted empty).
	Incarnation(ctx context.Context) (string, error)
}

// OutboxRecovery puts back in the outbox the events a broker lost after acknowledging them.
type OutboxRecovery interface {
	// ResendLost records that the broker holds incarnation now. If it held another one when
	// last recorded, every event published since that one was first recorded, less margin (for
	// a batch in flight as the broker changed), is marked unpublished again, to be sent again;
	// it returns how many. Recording the first incarnation marks nothing.
	ResendLost(ctx context.Context, incarnation string, margin time.Duration) (int, error)
}

// ProcessedEvents remembers which events a consumer has applied, for effects that cannot share
// a transaction with the record (sending a mail).
type ProcessedEvents interface {
	EventProcessed(ctx context.Context, consumer string, eventID uuid.UUID) (bool, error)
	MarkEventProcessed(ctx context.Context, consumer string, eventID uuid.UUID) error
}

// SaleStatsRepository keeps the analytics consumer's per-sale figures.
type SaleStatsRepository interface {
	// AddOrderToStats applies one order.confirmed event, once per consumer: applied is false
	// for an event seen before. An event of an unknown sale wraps domain.ErrPermanent.
	AddOrderToStats(ctx context.Context, consumer string, e domain.OrderConfirmedV1) (applied bool, err error)
	// SaleStats reads a sale's figures (zero before its first order).
	SaleStats(ctx context.Context, tenantID, saleID uuid.UUID) (domain.SaleStats, error)
}

// SaleCounterRepository keeps the sold counter PostgreSQL holds for each sale, beside Redis's.
type SaleCounterRepository interface {
	// AddSoldUnits applies one order.confirmed event, once per consumer.
	AddSoldUnits(ctx context.Context, consumer string, e domain.OrderConfirmedV1) (applied bool, err error)
	// SoldCounter reads the counter; ok is false before the sale's first event.
	SoldCounter(ctx context.Context, tenantID, saleID uuid.UUID) (sold int, ok bool, err error)
	// RecordDrift stores the last measured difference, Redis minus PostgreSQL.
	RecordDrift(ctx context.Context, tenantID, saleID uuid.UUID, drift int) error
}

// Mailer sends mail.
type Mailer interface {
	Send(ctx context.Context, m domain.Mail) error
}

// Metrics receives the figures operators watch.
type Metrics interface {
	InventoryDrift(tenantID, saleID uuid.UUID, units int)
	// DriftChecked says a check covered every sale in live: a sale no longer live has no
	// drift to show (its series goes).
	DriftChecked(live []SaleRef)
	OutboxBacklog(pending int, oldest time.Duration)
	// Overview reads what this process measured, for the control room: the tenant's drift
	// only, the rest as the process counted it.
	Overview(ctx context.Context, tenantID uuid.UUID) (Overview, error)
}

// Overview is what a process measured of the traffic: running totals and cumulative
// histograms since it started (a reader takes the difference of two reads), and gauges.
type Overview struct {
	// Purchases counts answers to purchases by outcome (accepted, sold_out, ...).
	Purchases map[string]uint64
	// PurchaseLatency is the time to answer a purchase.
	PurchaseLatency Histogram
	Queue           QueueDepth
	// DurableMeasured: this process runs a worker, which measures Durable (accepted to
	// written in PostgreSQL).
	DurableMeasured bool
	Durable         Histogram
	// Drift is, per live sale, Redis minus PostgreSQL confirmed units (inventory-sync).
	Drift map[uuid.UUID]int
}

// Histogram is cumulative: Buckets[i] observations were at most Bounds[i] seconds.
type Histogram struct {
	Count   uint64
	Sum     float64
	Bounds  []float64
	Buckets []uint64
}

// QueueDepth is the order queue's tasks by state; Measured is false when it could not be read.
type QueueDepth struct {
	Name                                        string
	Pending, Active, Scheduled, Retry, Archived int
	OldestPending                               time.Duration
	Measured                                    bool
}

// LiveEvents is how the use cases tell live clients what happened. It is best effort: a lost
// event is corrected by the next one, and never fails the use case that caused it.
type LiveEvents interface {
	// StockChanged reports that a sale's stock changed: clients get its latest figures as one
	// inventory:updated event, however many changes came together.
	StockChanged(tenantID, saleID uuid.UUID)
	// Publish sends e to the clients it concerns.
	Publish(ctx context.Context, e domain.LiveEvent) error
}

// Broadcaster delivers live events to the clients connected to every API node.
type Broadcaster interface {
	Broadcast(ctx context.Context, e domain.LiveEvent) error
}

// SaleScheduler fires sale:started and sale:ended at a sale's times, once across all nodes.
type SaleScheduler interface {
	// ScheduleSale (re)schedules both events for the sale's current times.
	ScheduleSale(ctx context.Context, s domain.Sale) error
}

// TicketStore issues one-time WebSocket tickets: a short-lived stand-in for the access token,
// so that no long-lived token travels in a URL.
type TicketStore interface {
	IssueTicket(ctx context.Context, p domain.Principal, ttl time.Duration) (string, error)
	// RedeemTicket returns the ticket's principal once; ok is false for an unknown, used or
	// expired ticket.
	RedeemTicket(ctx context.Context, ticket string) (p domain.Principal, ok bool, err error)
}

// WaitingRoomStore keeps the waiting rooms of sales that have one (domain.WaitingRoom): the
// places, the admissions and the admission rate, atomically with the sale's stock (the room's
// keys share the slot of the sale's inventory, of its head shard if sharded), consistent
// whichever API node a shopper reaches. Its clock is the store's (one for every node).
type WaitingRoomStore interface {
	// Join takes a place for user, or returns the place taken before (one per account; a shopper
	// once admitted is never placed again). draw is the new place's sort key if the sale has not
	// started (a random number below 1: the pre-start joiners' order is a random draw, not their
	// arrival); later arrivals the store numbers itself, behind every draw. Joining is also a
	// heartbeat.
	Join(ctx context.Context, s domain.Sale, user uuid.UUID, draw float64) (domain.QueuePlace, error)
	// Place is user's place (ok false: none) and counts as a heartbeat.
	Place(ctx context.Context, s domain.Sale, user uuid.UUID) (p domain.QueuePlace, ok bool, err error)
	// Admit runs one admission pass (safe under concurrency: any number of nodes may run it):
	// admissions ended unused are freed, silent waiting shoppers dropped (no heartbeat for grace,
	// counted from the start at the earliest), then up to the room's rate since the last pass,
	// as many as domain.CanAdmit allows against the sale's remaining stock. remaining is the
	// caller's reading of the stock: a sale of one shard is read by the store atomically
	// instead; a sharded sale's shards live in other slots, so their sum is the caller's.
	Admit(ctx context.Context, s domain.Sale, remaining int, grace time.Duration) (domain.AdmitPass, error)
	// UseAdmission spends user's admission for a purchase with idempotencyKey (the same key
	// finds it spent by itself: AdmissionSpent again).
	UseAdmission(ctx context.Context, tenantID, saleID, user uuid.UUID, idempotencyKey string) (domain.AdmissionUse, error)
	// Present reports whether the sale's room has run an admission pass in the store (false:
	// never yet, or the store lost it).
	Present(ctx context.Context, s domain.Sale) (bool, error)
	// Restore puts back admissions the store lost, before any pass runs (Present is then true):
	// a shopper in bought (user -> the idempotency key of its order) as spent by that key, the
	// others admitted until their end, or expired; none is placed in the queue again. What the
	// store holds already is kept.
	Restore(ctx context.Context, s domain.Sale, admitted []domain.Admitted, bought map[uuid.UUID]string) error
}

// RoomAdmissionRecords keeps, in the durable store, the admissions the waiting rooms gave, so
// that a room Redis lost is put back before it admits anyone again: no shopper is admitted twice.
type RoomAdmissionRecords interface {
	// RecordAdmissions records the admissions of one pass (one per shopper and sale: a shopper
	// recorded before keeps the first).
	RecordAdmissions(ctx context.Context, s domain.Sale, admitted []domain.Admitted) error
	// Admissions are the sale's recorded admissions.
	Admissions(ctx context.Context, tenantID, saleID uuid.UUID) ([]domain.Admitted, error)
}

// WaitingRoomSales lists the sales whose waiting room the admission pass serves.
type WaitingRoomSales interface {
	// LiveWaitingRoomSales are the sales with a waiting room enabled that end after since.
	LiveWaitingRoomSales(ctx context.Context, since time.Time) ([]domain.Sale, error)
}
