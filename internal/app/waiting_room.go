package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// WaitingRoom runs the waiting rooms of the sales that have one (domain.WaitingRoom): shoppers
// join and poll (Join, Status), the worker's pass admits them (AdmitPass), and a purchase of
// such a sale spends its buyer's admission (Admit, called by PlaceOrderHandler).
type WaitingRoom struct {
	Sales     ports.SaleRepository
	Cache     ports.SaleCache
	Rooms     ports.WaitingRoomStore
	RoomSales ports.WaitingRoomSales
	// Records keeps the admissions given in the durable store, and Orders tells who bought, so
	// that a room Redis lost is put back before the next pass admits anyone (nil: not kept).
	Records ports.RoomAdmissionRecords
	Orders  ports.OrderRepository
	Stock   Stock
	Live    ports.LiveEvents
	Now     func() time.Time
	Log     *slog.Logger
	// Secret signs queue tickets and admission tokens.
	Secret []byte
	// Grace is how long a waiting shopper may stay silent (no poll, no join) once the sale
	// started before losing the place.
	Grace time.Duration
	// SettingsTTL is how long a node trusts what it read of a sale's room option at purchase
	// time (an admin turning the room on or off is seen within it).
	SettingsTTL time.Duration
	// PositionEvery spaces the queue:position events of one sale (every waiting client gets
	// each): a change of likelySoldOut is told at once.
	PositionEvery time.Duration
	// rooms remembers, per sale, whether it has a room (purchases read it; see hasRoom).
	rooms *sync.Map
	// told remembers, per sale, the last queue:position this node sent (positionTold).
	told *sync.Map
	// lookups are the readings of sales' room options under way (hasRoom).
	lookups *sync.Map
	// unrecorded are admissions given whose record failed, by sale: the next pass records them.
	mu         *sync.Mutex
	unrecorded map[uuid.UUID][]domain.Admitted
}

type positionTold struct {
	at     time.Time
	likely bool
}

// NewWaitingRoom returns w ready to use (its memory of sales' options made).
func NewWaitingRoom(w WaitingRoom) *WaitingRoom {
	w.rooms, w.told, w.lookups = &sync.Map{}, &sync.Map{}, &sync.Map{}
	w.mu, w.unrecorded = &sync.Mutex{}, map[uuid.UUID][]domain.Admitted{}
	if w.SettingsTTL <= 0 {
		w.SettingsTTL = time.Second
	}
	if w.PositionEvery <= 0 {
		w.PositionEvery = time.Second
	}
	return &w
}

// QueueView is a shopper's place with what the client needs to show it.
type QueueView struct {
	SaleID uuid.UUID
	Place  domain.QueuePlace
	// Drawn: the sale started, so the pre-start joiners' random order is settled.
	Drawn bool
	// Estimate until admission at the room's rate (waiting only).
	Estimate *time.Duration
	// Ticket is the signed queue ticket; AdmissionToken the signed admission (admitted only).
	Ticket, AdmissionToken string
}

// Join places the shopper in the sale's room, or returns the place taken before.
func (w *WaitingRoom) Join(ctx context.Context, p domain.Principal, saleID uuid.UUID) (QueueView, error) {
	s, err := w.roomSale(ctx, p, saleID)
	if err != nil {
		return QueueView{}, err
	}
	place, err := w.Rooms.Join(ctx, s, p.UserID, draw())
	if err != nil {
		return QueueView{}, fmt.Errorf("join waiting room: %w", err)
	}
	return w.view(s, p.UserID, place), nil
}

// Status is the shopper's place in the sale's room (domain.ErrNotInQueue if none); reading it
// is the heartbeat that keeps it.
func (w *WaitingRoom) Status(ctx context.Context, p domain.Principal, saleID uuid.UUID) (QueueView, error) {
	s, err := w.roomSale(ctx, p, saleID)
	if err != nil {
		return QueueView{}, err
	}
	place, ok, err := w.Rooms.Place(ctx, s, p.UserID)
	if err != nil {
		return QueueView{}, fmt.Errorf("waiting room place: %w", err)
	}
	if !ok {
		return QueueView{}, domain.ErrNotInQueue.WithDetail("no place in this sale's waiting room: join it (a silent place is given up)")
	}
	return w.view(s, p.UserID, place), nil
}

func (w *WaitingRoom) roomSale(ctx context.Context, p domain.Principal, saleID uuid.UUID) (domain.Sale, error) {
	if p.Role != domain.RoleShopper {
		return domain.Sale{}, domain.ErrForbidden.WithDetail("only shoppers wait in the room")
	}
	s, err := w.sale(ctx, p.TenantID, saleID)
	if err != nil {
		return domain.Sale{}, err
	}
	if !s.WaitingRoom.Enabled {
		return domain.Sale{}, domain.ErrNoWaitingRoom.WithDetail("this sale has no waiting room: buy directly")
	}
	return s, nil
}

// sale reads the sale through the cache, as GetSale does.
func (w *WaitingRoom) sale(ctx context.Context, tenantID, saleID uuid.UUID) (domain.Sale, error) {
	s, ok, err := w.Cache.CachedSale(ctx, tenantID, saleID)
	if err != nil {
		w.Log.WarnContext(ctx, "sale cache read failed", "sale_id", saleID, "err", err)
	}
	if ok {
		return s, nil
	}
	s, err = w.Sales.Sale(ctx, tenantID, saleID)
	if err != nil {
		return domain.Sale{}, err
	}
	if err := w.Cache.FillSale(ctx, s); err != nil {
		w.Log.WarnContext(ctx, "sale cache write failed", "sale_id", saleID, "err", err)
	}
	return s, nil
}

func (w *WaitingRoom) view(s domain.Sale, user uuid.UUID, place domain.QueuePlace) QueueView {
	v := QueueView{SaleID: s.ID, Place: place, Drawn: !w.Now().Before(s.StartsAt),
		Ticket: w.sign("ticket", s.ID, user, strconv.FormatFloat(place.Key, 'g', -1, 64))}
	rate := s.WaitingRoom.AdmitPerSecond
	if place.Room.Rate > 0 { // an automatic rate: the one in force
		rate = place.Room.Rate
	}
	if place.State == domain.QueueWaiting && rate > 0 {
		d := time.Duration(place.Position) * time.Second / time.Duration(rate)
		if v.Drawn {
			d = d.Round(time.Second)
		} else {
			d = s.StartsAt.Sub(w.Now()) + d
		}
		v.Estimate = &d
	}
	if place.State == domain.QueueAdmitted {
		v.AdmissionToken = w.admissionToken(s.ID, user, place.AdmittedUntil)
	}
	return v
}

func (w *WaitingRoom) admissionToken(saleID, user uuid.UUID, until time.Time) string {
	return w.sign("admission", saleID, user, strconv.FormatInt(until.UnixMilli(), 10))
}

// sign is base64url("<kind>.<sale>.<user>.<value>") "." base64url(HMAC-SHA256 of it).
func (w *WaitingRoom) sign(kind string, saleID, user uuid.UUID, value string) string {
	body := kind + "." + saleID.String() + "." + user.String() + "." + value
	m := hmac.New(sha256.New, w.Secret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString([]byte(body)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// draw is a pre-start joiner's place key: uniform in [0, 1), from the system's CSPRNG, so that
// the order at the start is a random permutation independent of arrival.
func draw() float64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// Admit is the waiting room's part of a purchase (PlaceOrderHandler): a purchase of a sale with
// a room needs its buyer's admission. A purchase store that spends it itself, with the stock it
// takes and in the same round trip (inPurchase: ports.PurchaseStore.AdmissionInPurchase), is
// told to (required); otherwise the admission is spent here first, in a call of its own. A sale
// without a room costs no call: whether a sale has one is remembered per node for SettingsTTL.
func (w *WaitingRoom) Admit(ctx context.Context, cmd PlaceOrder, inPurchase bool) (required bool, _ error) {
	if w == nil {
		return false, nil
	}
	room, err := w.hasRoom(ctx, cmd.Principal.TenantID, cmd.SaleID)
	if errors.Is(err, domain.ErrSaleNotFound) {
		return false, nil // the purchase answers it
	}
	if err != nil || !room {
		return false, err
	}
	if inPurchase {
		return true, nil
	}
	use, err := w.Rooms.UseAdmission(ctx, cmd.Principal.TenantID, cmd.SaleID, cmd.Principal.UserID, cmd.IdempotencyKey)
	if err != nil {
		return false, fmt.Errorf("spend admission: %w", err)
	}
	return false, domain.AdmissionRefusal(use)
}

type roomOption struct {
	enabled bool
	until   time.Time
}

// roomLookup is one reading of a sale's room option that the purchases arriving meanwhile wait
// for, rather than each reading it (a burst's first thousand purchases on a node would each
// read the sale, and queue for the database pool when the cache has not got it yet).
type roomLookup struct {
	done    chan struct{}
	enabled bool
	err     error
}

func (w *WaitingRoom) hasRoom(ctx context.Context, tenantID, saleID uuid.UUID) (bool, error) {
	now := w.Now()
	if v, ok := w.rooms.Load(saleID); ok {
		if o, fresh := v.(roomOption); fresh && now.Before(o.until) {
			return o.enabled, nil
		}
	}
	l := &roomLookup{done: make(chan struct{})}
	if v, busy := w.lookups.LoadOrStore(saleID, l); busy {
		other := v.(*roomLookup)
		select {
		case <-other.done:
			return other.enabled, other.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	defer func() {
		w.lookups.Delete(saleID)
		close(l.done)
	}()
	s, err := w.sale(ctx, tenantID, saleID)
	if err != nil {
		l.err = err
		return false, err
	}
	l.enabled = s.WaitingRoom.Enabled
	w.rooms.Store(saleID, roomOption{enabled: l.enabled, until: now.Add(w.SettingsTTL)})
	return l.enabled, nil
}

// soldOutPassTimeout bounds the admission pass a sell-out runs at once (SoldOut).
const soldOutPassTimeout = 5 * time.Second

// SoldOut closes the sale's room at once when a purchase took its last unit, rather than at the
// worker's next pass: the pass run now finds no stock and tells every waiting client
// (queue:closed). It runs beside the purchase's answer, on the sale as the node's memory and the
// sale cache know it (the database may be busy writing the orders); the worker's passes follow.
func (w *WaitingRoom) SoldOut(ctx context.Context, tenantID, saleID uuid.UUID) {
	if w == nil {
		return
	}
	if v, ok := w.rooms.Load(saleID); ok && !v.(roomOption).enabled {
		return // known to have no room (were it stale, the worker's next pass closes the room)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), soldOutPassTimeout)
	go func() {
		defer cancel()
		s, err := w.sale(ctx, tenantID, saleID)
		if err != nil || !s.WaitingRoom.Enabled {
			return
		}
		if err := w.admitSale(ctx, s, &RoomReport{}); err != nil {
			w.Log.WarnContext(ctx, "waiting room not closed at the sell-out (the worker's next pass will)", "sale_id", s.ID, "err", err)
		}
	}()
}

// RoomReport sums one admission pass over every live room.
type RoomReport struct {
	Rooms, Admitted, Expired, Lost int
}

// AdmitPass admits, in every live sale with a room, as many waiting shoppers as its rate since
// the last pass and its remaining stock allow, and tells the clients: the admitted shopper
// (queue:admitted), the sale's clients when the room's figures changed (queue:position) and
// when it closed (queue:closed). Any number of nodes may run it (the store's bucket and clock
// are shared); the worker role runs it (ROOM_ADMIT_INTERVAL).
func (w *WaitingRoom) AdmitPass(ctx context.Context) (RoomReport, error) {
	now := w.Now()
	// Ended a little ago too: the pass that finds a room past its end closes it and says so.
	sales, err := w.RoomSales.LiveWaitingRoomSales(ctx, now.Add(-time.Minute))
	if err != nil {
		return RoomReport{}, fmt.Errorf("admission pass: %w", err)
	}
	var rep RoomReport
	var errs []error
	for _, s := range sales {
		if err := w.admitSale(ctx, s, &rep); err != nil {
			errs = append(errs, fmt.Errorf("admission pass of sale %s: %w", s.ID, err))
		}
	}
	return rep, errors.Join(errs...)
}

// restore puts back the admissions of s's room when the room store has lost them (it holds no
// trace of a pass, yet PostgreSQL records admissions): a shopper admitted before is neither
// placed again nor admitted twice, and one who bought keeps it spent.
func (w *WaitingRoom) restore(ctx context.Context, s domain.Sale) error {
	if w.Records == nil {
		return nil
	}
	present, err := w.Rooms.Present(ctx, s)
	if err != nil || present {
		return err
	}
	recs, err := w.Records.Admissions(ctx, s.TenantID, s.ID)
	if err != nil || len(recs) == 0 { // none: the room's first pass
		return err
	}
	orders, err := w.Orders.SaleOrders(ctx, s.TenantID, s.ID)
	if err != nil {
		return fmt.Errorf("restore waiting room: %w", err)
	}
	bought := map[uuid.UUID]string{}
	for _, o := range orders {
		if o.Status != domain.OrderFailed {
			bought[o.UserID] = o.IdempotencyKey
		}
	}
	if err := w.Rooms.Restore(ctx, s, recs, bought); err != nil {
		return err
	}
	w.Log.WarnContext(ctx, "waiting room restored from PostgreSQL: the room store had lost it",
		"sale_id", s.ID, "admissions", len(recs), "bought", len(bought))
	return nil
}

// record keeps the admissions a pass gave in the durable store, with those a failed record
// left over; what fails now waits for the next pass.
func (w *WaitingRoom) record(ctx context.Context, s domain.Sale, admitted []domain.Admitted) {
	if w.Records == nil {
		return
	}
	w.mu.Lock()
	pending := slices.Concat(w.unrecorded[s.ID], admitted)
	delete(w.unrecorded, s.ID)
	w.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	if err := w.Records.RecordAdmissions(ctx, s, pending); err != nil {
		w.Log.WarnContext(ctx, "waiting room admissions not recorded yet (the next pass tries again)",
			"sale_id", s.ID, "admissions", len(pending), "err", err)
		w.mu.Lock()
		w.unrecorded[s.ID] = append(w.unrecorded[s.ID], pending...)
		w.mu.Unlock()
	}
}

// positionDue reports whether the pass's figures are worth a queue:position now: they changed,
// and the last was sent PositionEvery ago or said otherwise about likelySoldOut. Every waiting
// client gets each one: at 10,000 clients, one every pass (4 a second) would be the hub's
// whole work.
func (w *WaitingRoom) positionDue(saleID uuid.UUID, pass domain.AdmitPass, now time.Time) bool {
	if !pass.Changed {
		return false
	}
	if v, ok := w.told.Load(saleID); ok {
		last := v.(positionTold)
		if last.likely == pass.Room.LikelySoldOut && now.Sub(last.at) < w.PositionEvery {
			return false
		}
	}
	w.told.Store(saleID, positionTold{at: now, likely: pass.Room.LikelySoldOut})
	return true
}

func (w *WaitingRoom) admitSale(ctx context.Context, s domain.Sale, rep *RoomReport) error {
	if err := w.restore(ctx, s); err != nil { // never admit before a lost room is back
		return err
	}
	inv, err := w.Stock.Of(ctx, s) // loads a missing inventory; sums a sharded sale's shards
	if err != nil {
		return err
	}
	pass, err := w.Rooms.Admit(ctx, s, inv.Remaining, w.Grace)
	if err != nil {
		return err
	}
	w.record(ctx, s, pass.Admitted)
	rep.Rooms++
	rep.Admitted += len(pass.Admitted)
	rep.Expired += pass.Expired
	rep.Lost += pass.Lost
	now := w.Now()
	for _, a := range pass.Admitted {
		user := a.UserID
		publish(ctx, w.Live, w.Log, domain.LiveEvent{Type: domain.LiveQueueAdmitted, TenantID: s.TenantID, SaleID: s.ID,
			UserID: &user, TS: now, Data: domain.QueueAdmittedData{ExpiresAt: a.Until, Token: w.admissionToken(s.ID, user, a.Until)}})
	}
	if w.positionDue(s.ID, pass, now) {
		publish(ctx, w.Live, w.Log, domain.LiveEvent{Type: domain.LiveQueuePosition, TenantID: s.TenantID, SaleID: s.ID, TS: now,
			Data: domain.QueuePositionData{Waiting: pass.Room.Waiting, Admitted: pass.Room.Admitted,
				LikelySoldOut: pass.Room.LikelySoldOut, Remaining: pass.Remaining}})
	}
	if pass.Closing {
		w.told.Delete(s.ID) // reopening is told at once
		data := domain.QueueClosedData{Reason: "sold_out", KeepPlace: true}
		if !now.Before(s.EndsAt) {
			data = domain.QueueClosedData{Reason: "ended"}
		}
		publish(ctx, w.Live, w.Log, domain.LiveEvent{Type: domain.LiveQueueClosed, TenantID: s.TenantID, SaleID: s.ID, TS: now, Data: data})
	}
	return nil
}
