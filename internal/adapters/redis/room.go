package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/lua"
)

var (
	roomPlaceScript   = goredis.NewScript(lua.RoomPlace)
	roomAdmitScript   = goredis.NewScript(lua.RoomAdmit)
	roomUseScript     = goredis.NewScript(lua.RoomUse)
	roomRestoreScript = goredis.NewScript(lua.RoomRestore)
)

// Rooms implements ports.WaitingRoomStore. A room's keys carry the sale's {tenant:sale} hash
// tag, the tag of its inventory (of the head shard of a sharded sale), so room_admit.lua reads a
// one-shard sale's remaining stock in the same atomic step as it admits. A sharded sale keeps
// shard k's stock under {tenant:sale:k}, other slots: the caller sums the shards' remaining
// (app.Stock) and the pass counts against that reading; the admissions' own accounting stays
// atomic, and a sum read a moment early only errs on the side of the purchases already made by
// shoppers the room counts as admitted.
type Rooms struct {
	rdb    goredis.UniversalClient
	prefix string
	// Hold bounds how long a spent admission keeps holding its share of the stock while its
	// purchase's reservation has not been seen taking the stock. On a one-shard sale the pass
	// sees the reservation (the sale's buyers) and ends the hold at once, so the bound only
	// matters for a purchase that is refused or slow: long, so that a purchase stalled between
	// its spend and its reservation cannot let the room admit beyond the stock. A sharded sale's
	// buyers live in other slots: every spent admission holds for HoldSharded, counted twice
	// with the units it bought meanwhile (admission slows near the end of the stock), and a
	// purchase stalled longer than that could let one more shopper in than the stock serves.
	Hold, HoldSharded time.Duration
}

// NewRooms stores under prefix (REDIS_PREFIX), beside the inventory.
func NewRooms(rdb goredis.UniversalClient, prefix string) *Rooms {
	return &Rooms{rdb: rdb, prefix: prefix, Hold: 30 * time.Second, HoldSharded: 3 * time.Second}
}

var _ ports.WaitingRoomStore = (*Rooms)(nil)

// roomKeys are the keys of one sale's room.
type roomKeys struct{ inv, buyers, keys, wait, seen, adm, state, live, held string }

func (r *Rooms) keys(tenantID, saleID uuid.UUID) roomKeys {
	return roomKeysOf(r.prefix, tenantID, saleID)
}

// roomKeysOf are the keys of a sale's room under prefix: in the slot of the sale's head shard.
func roomKeysOf(prefix string, tenantID, saleID uuid.UUID) roomKeys {
	base := prefix + ":{" + tenantID.String() + ":" + saleID.String() + "}:"
	return roomKeys{inv: base + "inv", buyers: base + "buyers", keys: base + "keys", wait: base + "room:wait", seen: base + "room:seen",
		adm: base + "room:adm", state: base + "room:state", live: base + "room:live", held: base + "room:held"}
}

// Join implements ports.WaitingRoomStore.
func (r *Rooms) Join(ctx context.Context, s domain.Sale, user uuid.UUID, draw float64) (_ domain.QueuePlace, err error) {
	defer func() { err = unavailable(err) }()
	p, _, err := r.place(ctx, s, user, true, draw)
	return p, err
}

// Place implements ports.WaitingRoomStore.
func (r *Rooms) Place(ctx context.Context, s domain.Sale, user uuid.UUID) (_ domain.QueuePlace, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	return r.place(ctx, s, user, false, 0)
}

func (r *Rooms) place(ctx context.Context, s domain.Sale, user uuid.UUID, join bool, draw float64) (domain.QueuePlace, bool, error) {
	k := r.keys(s.TenantID, s.ID)
	flag := "0"
	if join {
		flag = "1"
	}
	readBuyers := "1" // a one-shard sale's buyers: a sharded sale's are in their home shards
	if s.ShardCount() > 1 {
		readBuyers = "0"
	}
	reply, err := roomPlaceScript.Run(ctx, r.rdb, []string{k.wait, k.seen, k.adm, k.state, k.buyers},
		user.String(), flag, strconv.FormatFloat(draw, 'g', -1, 64), s.StartsAt.UnixMilli(), readBuyers).StringSlice()
	if err != nil {
		return domain.QueuePlace{}, false, fmt.Errorf("waiting room place: %w", err)
	}
	if reply[0] == "none" {
		return domain.QueuePlace{}, false, nil
	}
	if len(reply) < 8 {
		return domain.QueuePlace{}, false, fmt.Errorf("waiting room place: unexpected reply %q", reply)
	}
	p := domain.QueuePlace{
		State:    domain.QueueState(reply[0]),
		Position: atoi(reply[1]),
		Room: domain.RoomCounts{Waiting: atoi(reply[4]), Admitted: atoi(reply[5]), LikelySoldOut: reply[6] == "1",
			Closed: reply[7] == "1"},
	}
	p.Key, _ = strconv.ParseFloat(reply[2], 64)
	if len(reply) > 8 {
		p.Room.Rate = atoi(reply[8]) // '' (a fixed rate): 0
	}
	if until := atoi64(reply[3]); until > 0 {
		p.AdmittedUntil = time.UnixMilli(until).UTC()
	}
	return p, true, nil
}

// Admit implements ports.WaitingRoomStore.
func (r *Rooms) Admit(ctx context.Context, s domain.Sale, remaining int, grace time.Duration) (_ domain.AdmitPass, err error) {
	defer func() { err = unavailable(err) }()
	k := r.keys(s.TenantID, s.ID)
	atomicRead, hold := "1", r.Hold
	if s.ShardCount() > 1 {
		atomicRead, hold = "0", r.HoldSharded
	}
	auto := "0"
	if s.WaitingRoom.AutoRate {
		auto = "1"
	}
	reply, err := roomAdmitScript.Run(ctx, r.rdb, []string{k.inv, k.wait, k.seen, k.adm, k.state, k.live, k.held, k.buyers},
		s.WaitingRoom.AdmitPerSecond, s.WaitingRoom.AdmissionTTL.Milliseconds(), s.PerUserLimit,
		s.StartsAt.UnixMilli(), s.EndsAt.UnixMilli(), grace.Milliseconds(), remaining, atomicRead, hold.Milliseconds(), auto).StringSlice()
	if err != nil {
		return domain.AdmitPass{}, fmt.Errorf("waiting room admission pass: %w", err)
	}
	if len(reply) < 13 {
		return domain.AdmitPass{}, fmt.Errorf("waiting room admission pass: unexpected reply %q", reply)
	}
	pass := domain.AdmitPass{
		Remaining: atoi(reply[0]), Outstanding: atoi(reply[1]),
		Room: domain.RoomCounts{Waiting: atoi(reply[2]), Admitted: atoi(reply[3]), LikelySoldOut: reply[4] == "1",
			Closed: reply[5] == "1"},
		Changed: reply[6] == "1", Expired: atoi(reply[7]), Lost: atoi(reply[8]), Closing: reply[11] == "closing",
	}
	if s.WaitingRoom.AutoRate {
		pass.Room.Rate = atoi(reply[12])
	}
	until := time.UnixMilli(atoi64(reply[10])).UTC()
	for _, u := range reply[13:] {
		id, err := uuid.Parse(u)
		if err != nil {
			return pass, fmt.Errorf("waiting room admission pass: %w", err)
		}
		pass.Admitted = append(pass.Admitted, domain.Admitted{UserID: id, Until: until})
	}
	return pass, nil
}

// UseAdmission implements ports.WaitingRoomStore.
func (r *Rooms) UseAdmission(ctx context.Context, tenantID, saleID, user uuid.UUID, idempotencyKey string) (_ domain.AdmissionUse, err error) {
	defer func() { err = unavailable(err) }()
	k := r.keys(tenantID, saleID)
	// The sale's 'keys' (its head shard's if sharded: a key found there did make an order; a
	// sharded sale's buyers homed elsewhere are not found, and are refused after a loss).
	out, err := roomUseScript.Run(ctx, r.rdb, []string{k.adm, k.live, k.held, k.keys}, user.String(), idempotencyKey).Text()
	if err != nil {
		return "", fmt.Errorf("spend admission: %w", err)
	}
	return domain.AdmissionUse(out), nil
}

// Present implements ports.WaitingRoomStore: every admission pass stamps the room's state.
func (r *Rooms) Present(ctx context.Context, s domain.Sale) (_ bool, err error) {
	defer func() { err = unavailable(err) }()
	ok, err := r.rdb.HExists(ctx, r.keys(s.TenantID, s.ID).state, "last").Result()
	if err != nil {
		return false, fmt.Errorf("waiting room present: %w", err)
	}
	return ok, nil
}

// Restore implements ports.WaitingRoomStore (room_restore.lua), 1,000 admissions a call.
func (r *Rooms) Restore(ctx context.Context, s domain.Sale, admitted []domain.Admitted, bought map[uuid.UUID]string) (err error) {
	defer func() { err = unavailable(err) }()
	k := r.keys(s.TenantID, s.ID)
	keys := []string{k.wait, k.seen, k.adm, k.state, k.live}
	for first := true; first || len(admitted) > 0; first = false { // once at least: it stamps the room
		n := min(len(admitted), 1000)
		args := make([]any, 0, 3*n)
		for _, a := range admitted[:n] {
			args = append(args, a.UserID.String(), a.Until.UnixMilli(), bought[a.UserID])
		}
		if err := roomRestoreScript.Run(ctx, r.rdb, keys, args...).Err(); err != nil {
			return fmt.Errorf("waiting room restore: %w", err)
		}
		admitted = admitted[n:]
	}
	return nil
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
