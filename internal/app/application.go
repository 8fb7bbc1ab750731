package app

import (
	"log/slog"
	"time"

	"github.com/flashsale/flashsale/internal/ports"
)

// Deps are the ports the use-cases run on.
type Deps struct {
	Tenants   ports.TenantRepository
	Users     ports.UserRepository
	Sales     ports.SaleRepository
	Orders    ports.OrderRepository
	Inventory ports.InventoryStore
	Purchases ports.PurchaseStore
	Queue     ports.OrderQueue
	Cache     ports.SaleCache
	Hasher    ports.PasswordHasher
	Tokens    ports.TokenIssuer
	Sessions  ports.SessionStore
	// Event side: the outbox and its relay, and the consumers' stores. A role that does not
	// run a handler may leave its ports nil.
	Outbox    ports.Outbox
	Publisher ports.EventPublisher
	// Broker watches the embedded broker for a restart that lost its log (nil: a broker that
	// keeps it); Recovery puts what it lost back in the outbox.
	Broker    ports.BrokerWatcher
	Recovery  ports.OutboxRecovery
	Processed ports.ProcessedEvents
	Stats     ports.SaleStatsRepository
	Counters  ports.SaleCounterRepository
	Mailer    ports.Mailer
	Metrics   ports.Metrics
	// Real time: live events to every node's clients, scheduled sale events, WS tickets.
	Broadcaster ports.Broadcaster
	Scheduler   ports.SaleScheduler
	Tickets     ports.TicketStore
	Log         *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Settings tune the use-cases.
type Settings struct {
	IdempotencyLease time.Duration
	IdempotencyTTL   time.Duration
	ReconcileGrace   time.Duration
	// SaleHorizon is how long after its end a sale's reservations are still looked at.
	SaleHorizon    time.Duration
	ReconcileBatch int
	RefreshTTL     time.Duration
	RelayBatch     int
	// RelayUnhealthyAfter: how long events may wait with nothing published before the relay
	// reports itself unhealthy. RelayResendMargin: how far before a lost broker incarnation was
	// first seen its events are sent again (batches in flight as the broker changed).
	RelayUnhealthyAfter time.Duration
	RelayResendMargin   time.Duration
	TicketTTL           time.Duration
	// OrderAttempts bounds the attempts at an order PostgreSQL refuses; OrderRetryBudget is how
	// long an order is retried through an outage (see WriteOrderHandler).
	OrderAttempts    int
	OrderRetryBudget time.Duration
	// DispatchWorkers and DispatchBuffer size the background queueing of accepted orders;
	// DispatchAttempts bounds the tries at queueing one before the reconciler is left to it.
	DispatchWorkers  int
	DispatchBuffer   int
	DispatchAttempts int
}

// DefaultSettings are the production defaults.
func DefaultSettings() Settings {
	return Settings{
		IdempotencyLease:    30 * time.Second,
		IdempotencyTTL:      24 * time.Hour,
		ReconcileGrace:      time.Minute,
		SaleHorizon:         7 * 24 * time.Hour,
		ReconcileBatch:      500,
		RefreshTTL:          7 * 24 * time.Hour,
		RelayBatch:          500,
		RelayUnhealthyAfter: 30 * time.Second,
		RelayResendMargin:   time.Minute,
		TicketTTL:           30 * time.Second,
		OrderAttempts:       3,
		OrderRetryBudget:    time.Hour,
		DispatchWorkers:     8,
		DispatchBuffer:      10000,
		DispatchAttempts:    3,
	}
}

// Application is every use-case, wired to its ports.
type Application struct {
	Tenants         *TenantResolver
	Bootstrap       BootstrapHandler
	Register        RegisterHandler
	Login           *LoginHandler
	Sessions        SessionIssuer
	Refresh         RefreshHandler
	Logout          LogoutHandler
	LogoutAll       LogoutAllHandler
	Me              MeHandler
	CreateSale      CreateSaleHandler
	UpdateSale      UpdateSaleHandler
	GetSale         GetSaleHandler
	ListSales       ListSalesHandler
	PlaceOrder      PlaceOrderHandler
	WriteOrder      WriteOrderHandler
	GetOrder        GetOrderHandler
	ListOrders      ListOrdersHandler
	DeadLetters     DeadLettersHandler
	RetryDeadLetter RetryDeadLetterHandler
	Reconcile       ReconcileHandler
	RelayOutbox     *RelayOutboxHandler
	SendOrderEmail  SendOrderEmailHandler
	RecordSaleStats RecordSaleStatsHandler
	GetSaleStats    GetSaleStatsHandler
	SyncInventory   *SyncInventoryHandler
	Feed            *LiveFeed
	FireSaleEvent   FireSaleEventHandler
	IssueTicket     IssueTicketHandler
	RedeemTicket    RedeemTicketHandler
	// Dispatcher queues accepted orders in the background once started (API role).
	Dispatcher *OrderDispatcher
}

// New wires the use-cases.
func New(d Deps, s Settings) *Application {
	clock := d.Now
	if clock == nil {
		clock = time.Now
	}
	// PostgreSQL keeps microseconds: a time read back must equal the one handed out.
	now := func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	tenants := &TenantResolver{Tenants: d.Tenants}
	feed := &LiveFeed{Inventory: d.Inventory, Sales: d.Sales, Broadcaster: d.Broadcaster, Log: log, Now: now}
	dispatcher := &OrderDispatcher{Queue: d.Queue, Log: log,
		Workers: s.DispatchWorkers, Buffer: s.DispatchBuffer, Attempts: s.DispatchAttempts}
	issuer := SessionIssuer{Sessions: d.Sessions, Tokens: d.Tokens, RefreshTTL: s.RefreshTTL}
	return &Application{
		Tenants:    tenants,
		Bootstrap:  BootstrapHandler{Tenants: d.Tenants, Users: d.Users, Hasher: d.Hasher, Now: now},
		Register:   RegisterHandler{Tenants: tenants, Users: d.Users, Hasher: d.Hasher, Now: now},
		Login:      &LoginHandler{Tenants: tenants, Users: d.Users, Hasher: d.Hasher, Issuer: issuer},
		Sessions:   issuer,
		Refresh:    RefreshHandler{Issuer: issuer, Users: d.Users},
		Logout:     LogoutHandler{Sessions: d.Sessions},
		LogoutAll:  LogoutAllHandler{Sessions: d.Sessions},
		Me:         MeHandler{Users: d.Users},
		CreateSale: CreateSaleHandler{Sales: d.Sales, Inventory: d.Inventory, Scheduler: d.Scheduler, Now: now, Log: log},
		UpdateSale: UpdateSaleHandler{Sales: d.Sales, Inventory: d.Inventory, Cache: d.Cache, Scheduler: d.Scheduler,
			Feed: feed, Now: now, Log: log},
		GetSale:   GetSaleHandler{Sales: d.Sales, Inventory: d.Inventory, Cache: d.Cache, Now: now, Log: log},
		ListSales: ListSalesHandler{Sales: d.Sales, Inventory: d.Inventory, Now: now},
		PlaceOrder: PlaceOrderHandler{
			Sales: d.Sales, Inventory: d.Inventory, Purchases: d.Purchases, Now: now, Log: log,
			IdempotencyLease: s.IdempotencyLease, IdempotencyTTL: s.IdempotencyTTL,
			Feed: feed, Broadcaster: d.Broadcaster, Dispatcher: dispatcher,
		},
		WriteOrder: WriteOrderHandler{Orders: d.Orders, Inventory: d.Inventory, Now: now, Log: log,
			Broadcaster: d.Broadcaster, Feed: feed, Attempts: s.OrderAttempts, RetryBudget: s.OrderRetryBudget},
		GetOrder:        GetOrderHandler{Sales: d.Sales, Orders: d.Orders, Inventory: d.Inventory, Now: now, Horizon: s.SaleHorizon},
		ListOrders:      ListOrdersHandler{Orders: d.Orders},
		DeadLetters:     DeadLettersHandler{Queue: d.Queue},
		RetryDeadLetter: RetryDeadLetterHandler{Inventory: d.Inventory, Queue: d.Queue, Log: log, Feed: feed},
		Reconcile: ReconcileHandler{
			Sales: d.Sales, Orders: d.Orders, Inventory: d.Inventory, Queue: d.Queue, Now: now, Log: log,
			Grace: s.ReconcileGrace, Horizon: s.SaleHorizon, Batch: s.ReconcileBatch, Feed: feed,
		},
		RelayOutbox: &RelayOutboxHandler{Outbox: d.Outbox, Publisher: d.Publisher, Metrics: d.Metrics, Batch: s.RelayBatch,
			Broker: d.Broker, Recovery: d.Recovery, ResendMargin: s.RelayResendMargin,
			UnhealthyAfter: s.RelayUnhealthyAfter, Log: log, Now: clock},
		SendOrderEmail:  SendOrderEmailHandler{Users: d.Users, Sales: d.Sales, Mailer: d.Mailer, Processed: d.Processed},
		RecordSaleStats: RecordSaleStatsHandler{Stats: d.Stats},
		GetSaleStats:    GetSaleStatsHandler{Sales: d.Sales, Stats: d.Stats},
		SyncInventory: &SyncInventoryHandler{
			Counters: d.Counters, Inventory: d.Inventory, Sales: d.Sales, Metrics: d.Metrics, Log: log, Now: now,
			Horizon: s.SaleHorizon,
		},
		Feed: feed,
		FireSaleEvent: FireSaleEventHandler{Sales: d.Sales, Inventory: d.Inventory, Broadcaster: d.Broadcaster,
			Log: log, Now: now},
		IssueTicket:  IssueTicketHandler{Tickets: d.Tickets, TTL: s.TicketTTL},
		RedeemTicket: RedeemTicketHandler{Tickets: d.Tickets},
		Dispatcher:   dispatcher,
	}
}
