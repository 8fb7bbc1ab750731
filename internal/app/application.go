package app

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
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
	// Dispatch is the queue the purchase path hands accepted orders to: asynchronous in the API
	// role (internal/adapters/dispatch), Queue itself elsewhere.
	Dispatch ports.Dispatcher
	Nodes    ports.Nodes
	// Epoch marks the inventory store once every live sale's inventory is in it (Stock.Check).
	Epoch    ports.StoreEpoch
	Cache    ports.SaleCache
	Hasher   ports.PasswordHasher
	Tokens   ports.TokenIssuer
	Sessions ports.SessionStore
	// Event side: the outbox and its relay, and the consumers' stores. Every port is required:
	// a role that does not run a handler is given one that fails (see New).
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
	Live      ports.LiveEvents
	Scheduler ports.SaleScheduler
	Tickets   ports.TicketStore
	// Waiting rooms: the places and admissions, and the sales that have a room.
	Rooms     ports.WaitingRoomStore
	RoomSales ports.WaitingRoomSales
	// RoomRecords keeps the admissions given, durably: a room Redis lost is put back from it.
	RoomRecords ports.RoomAdmissionRecords
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
	// RelayWatchEvery spaces the relay's checks that the broker still holds what it acknowledged.
	RelayWatchEvery time.Duration
	TicketTTL       time.Duration
	// OrderAttempts bounds the attempts at an order PostgreSQL refuses; OrderRetryBudget is how
	// long an order is retried through an outage (see WriteOrderHandler).
	OrderAttempts    int
	OrderRetryBudget time.Duration
	// RestoreFence is how long purchases wait after a lost inventory is restored (Stock).
	RestoreFence time.Duration
	// SoldOutTTL is how long an API node answers a sale it saw sell out from memory without
	// seeing it sold out again (SoldOutSales); 0 turns that off.
	SoldOutTTL time.Duration
	// Node names this process on the reservations it accepts.
	Node string
	// RoomSecret signs waiting room tickets and admissions; RoomGrace is how long a waiting
	// shopper may stay silent after the start (WaitingRoom).
	RoomSecret []byte
	RoomGrace  time.Duration
}

// DefaultSettings are the production defaults.
func DefaultSettings() Settings {
	return Settings{
		IdempotencyLease:    5 * time.Second,
		IdempotencyTTL:      24 * time.Hour,
		ReconcileGrace:      10 * time.Second,
		SaleHorizon:         7 * 24 * time.Hour,
		ReconcileBatch:      500,
		RefreshTTL:          7 * 24 * time.Hour,
		RelayBatch:          500,
		RelayUnhealthyAfter: 30 * time.Second,
		RelayResendMargin:   time.Minute,
		RelayWatchEvery:     time.Second,
		TicketTTL:           30 * time.Second,
		OrderAttempts:       3,
		OrderRetryBudget:    time.Hour,
		RestoreFence:        3 * time.Second,
		SoldOutTTL:          DefaultSoldOutTTL,
		RoomGrace:           30 * time.Second,
	}
}

// Application is every use-case, wired to its ports.
type Application struct {
	Tenants    *TenantResolver
	Bootstrap  BootstrapHandler
	Register   RegisterHandler
	Login      *LoginHandler
	Sessions   SessionIssuer
	Refresh    RefreshHandler
	Logout     LogoutHandler
	LogoutAll  LogoutAllHandler
	Me         MeHandler
	CreateSale CreateSaleHandler
	UpdateSale UpdateSaleHandler
	GetSale    GetSaleHandler
	ListSales  ListSalesHandler
	PlaceOrder PlaceOrderHandler
	// SoldOutSales are the sales this node knows sold out: fed by the purchases it answers and
	// by every node's live events (Observe).
	SoldOutSales    *SoldOutSales
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
	GetOverview     GetOverviewHandler
	SyncInventory   *SyncInventoryHandler
	FireSaleEvent   FireSaleEventHandler
	IssueTicket     IssueTicketHandler
	RedeemTicket    RedeemTicketHandler
	WaitingRoom     *WaitingRoom
}

// New wires the use-cases. Every port of d is required, so that a missing one fails at start
// rather than at the first call that needs it; only Now (time.Now) and Log (slog.Default) may
// be left out.
func New(d Deps, s Settings) (*Application, error) {
	if missing := d.missing(); len(missing) > 0 {
		return nil, fmt.Errorf("app: ports not provided: %s", strings.Join(missing, ", "))
	}
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
	stock := Stock{Sales: d.Sales, Orders: d.Orders, Inventory: d.Inventory, Now: now, Log: log, Fence: s.RestoreFence,
		Epoch: d.Epoch, Live: d.Live}
	soldOut := NewSoldOutSales(s.SoldOutTTL, clock)
	write := WriteOrderHandler{Orders: d.Orders, Inventory: d.Inventory, Sales: d.Sales, Stock: stock, Now: now, Log: log,
		Live: d.Live, Attempts: s.OrderAttempts, RetryBudget: s.OrderRetryBudget, AdoptWait: 2 * time.Second}
	room := NewWaitingRoom(WaitingRoom{Sales: d.Sales, Cache: d.Cache, Rooms: d.Rooms, RoomSales: d.RoomSales, Stock: stock,
		Records: d.RoomRecords, Orders: d.Orders, Live: d.Live, Now: now, Log: log, Secret: s.RoomSecret, Grace: s.RoomGrace})
	issuer := SessionIssuer{Sessions: d.Sessions, Tokens: d.Tokens, RefreshTTL: s.RefreshTTL}
	return &Application{
		Tenants:    tenants,
		Bootstrap:  BootstrapHandler{Tenants: d.Tenants, Users: d.Users, Hasher: d.Hasher, Now: now},
		Register:   RegisterHandler{Tenants: tenants, Users: d.Users, Hasher: d.Hasher, Now: now},
		Login:      &LoginHandler{Tenants: tenants, Users: d.Users, Hasher: d.Hasher, Issuer: issuer, Log: log},
		Sessions:   issuer,
		Refresh:    RefreshHandler{Issuer: issuer, Users: d.Users},
		Logout:     LogoutHandler{Sessions: d.Sessions},
		LogoutAll:  LogoutAllHandler{Sessions: d.Sessions},
		Me:         MeHandler{Users: d.Users},
		CreateSale: CreateSaleHandler{Sales: d.Sales, Inventory: d.Inventory, Cache: d.Cache, Scheduler: d.Scheduler, Now: now, Log: log},
		UpdateSale: UpdateSaleHandler{Sales: d.Sales, Inventory: d.Inventory, Stock: stock, Cache: d.Cache, Scheduler: d.Scheduler,
			Live: d.Live, Now: now, Log: log},
		GetSale:   GetSaleHandler{Sales: d.Sales, Stock: stock, Cache: d.Cache, Now: now, Log: log},
		ListSales: ListSalesHandler{Sales: d.Sales, Inventory: d.Inventory, Stock: stock, Now: now},
		PlaceOrder: PlaceOrderHandler{
			Sales: d.Sales, Purchases: d.Purchases, Stock: stock, Node: s.Node, Now: now, Log: log,
			IdempotencyLease: s.IdempotencyLease, IdempotencyTTL: s.IdempotencyTTL,
			Live: d.Live, Queue: d.Dispatch, readopting: &sync.Map{}, SoldOutSales: soldOut, Room: room,
		},
		SoldOutSales:    soldOut,
		WriteOrder:      write,
		GetOrder:        GetOrderHandler{Sales: d.Sales, Orders: d.Orders, Inventory: d.Inventory, Now: now, Horizon: s.SaleHorizon},
		ListOrders:      ListOrdersHandler{Orders: d.Orders},
		DeadLetters:     DeadLettersHandler{Queue: d.Queue},
		RetryDeadLetter: RetryDeadLetterHandler{Inventory: d.Inventory, Queue: d.Queue, Log: log, Live: d.Live},
		Reconcile: ReconcileHandler{
			Sales: d.Sales, Orders: d.Orders, Inventory: d.Inventory, Queue: d.Queue, Now: now, Log: log,
			Grace: s.ReconcileGrace, Horizon: s.SaleHorizon, Batch: s.ReconcileBatch, Live: d.Live, Nodes: d.Nodes,
			Stock: stock, Write: write,
		},
		RelayOutbox: &RelayOutboxHandler{Outbox: d.Outbox, Publisher: d.Publisher, Metrics: d.Metrics, Batch: s.RelayBatch,
			Broker: d.Broker, Recovery: d.Recovery, ResendMargin: s.RelayResendMargin, WatchEvery: s.RelayWatchEvery,
			UnhealthyAfter: s.RelayUnhealthyAfter, Log: log, Now: clock},
		SendOrderEmail:  SendOrderEmailHandler{Users: d.Users, Sales: d.Sales, Mailer: d.Mailer, Processed: d.Processed},
		RecordSaleStats: RecordSaleStatsHandler{Stats: d.Stats},
		GetSaleStats:    GetSaleStatsHandler{Sales: d.Sales, Stats: d.Stats},
		GetOverview:     GetOverviewHandler{Metrics: d.Metrics, Now: now},
		SyncInventory: &SyncInventoryHandler{
			Counters: d.Counters, Inventory: d.Inventory, Sales: d.Sales, Metrics: d.Metrics, Log: log, Now: now,
			Horizon: s.SaleHorizon,
		},
		FireSaleEvent: FireSaleEventHandler{Sales: d.Sales, Inventory: d.Inventory, Live: d.Live, Now: now},
		IssueTicket:   IssueTicketHandler{Tickets: d.Tickets, TTL: s.TicketTTL},
		RedeemTicket:  RedeemTicketHandler{Tickets: d.Tickets},
		WaitingRoom:   room,
	}, nil
}

// missing names the ports d leaves nil.
func (d Deps) missing() []string {
	var out []string
	v := reflect.ValueOf(d)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "Now" || f.Name == "Log" {
			continue
		}
		if v.Field(i).IsNil() {
			out = append(out, f.Name)
		}
	}
	return out
}
