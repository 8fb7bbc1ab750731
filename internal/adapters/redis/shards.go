package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/lua"
)

// A sale may keep its stock in several shards (domain.Sale.Shards), each a whole inventory
// (inv, buyers, keys, res, awaited) in its own hash slot, so that one hot sale spreads over a
// Redis Cluster's masters. Shard 0, the head, keeps today's keys and the sale's total; shard k
// uses the hash tag {tenant:sale:k}. A buyer's purchases all go to one shard, their home
// (homeShard): their per-user total, idempotency keys and reservations live there, and every
// script runs on one shard unchanged. A purchase its home cannot serve moves stock from the
// other shards first (gather): the sale is sold out only when every shard is.

var (
	giveScript = goredis.NewScript(lua.Give)
	takeScript = goredis.NewScript(lua.Take)
)

// transferAge is how old a transfer left half-done (given, not taken: its purchase died or the
// receiver was fenced) must be before SettleTransfers finishes it.
var transferAge = 2 * time.Second

// shardKeys are the keys of shard k of a sale.
func (s *Inventory) shardKeys(tenantID, saleID uuid.UUID, k int) saleKeys {
	tag := tenantID.String() + ":" + saleID.String()
	if k > 0 {
		tag += ":" + strconv.Itoa(k)
	}
	base := s.prefix + ":{" + tag + "}:"
	return saleKeys{inv: base + "inv", buyers: base + "buyers", keys: base + "keys", res: base + "res",
		awaited: base + "awaited", xout: base + "xout", xin: base + "xin"}
}

// homeShard is the shard of n that holds user's purchases.
func homeShard(user uuid.UUID, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write(user[:])
	return int(h.Sum32() % uint32(n))
}

// shardCount is how many shards the sale's inventory has: its head's 'shards', cached (it never
// changes). A sale without an inventory reads as one shard, not cached.
func (s *Inventory) shardCount(ctx context.Context, tenantID, saleID uuid.UUID) (int, error) {
	head := s.keysOf(tenantID, saleID).inv
	if n, ok := s.shards.Load(head); ok {
		return n.(int), nil
	}
	v, err := s.rdb.HMGet(ctx, head, "total", "shards").Result()
	if err != nil {
		return 0, fmt.Errorf("read the sale's shards: %w", err)
	}
	return s.noteShards(head, v[0] != nil, v[1]), nil
}

// noteShards caches the shard count read from a head inventory (its 'shards' field, nil if
// not sharded) when the head exists, and returns it.
func (s *Inventory) noteShards(head string, exists bool, field any) int {
	n := max(atoi(field), 1)
	if exists {
		s.shards.Store(head, n)
	}
	return n
}

// home is the shard of r's buyer, its keys and the sale's shard count.
func (s *Inventory) home(ctx context.Context, r domain.Reservation) (saleKeys, int, int, error) {
	n, err := s.shardCount(ctx, r.TenantID, r.SaleID)
	if err != nil {
		return saleKeys{}, 0, 0, err
	}
	k := homeShard(r.UserID, n)
	return s.shardKeys(r.TenantID, r.SaleID, k), k, n, nil
}

// allShards are the keys of every shard of a sale.
func (s *Inventory) allShards(ctx context.Context, tenantID, saleID uuid.UUID) ([]saleKeys, error) {
	n, err := s.shardCount(ctx, tenantID, saleID)
	if err != nil {
		return nil, err
	}
	out := make([]saleKeys, n)
	for k := range out {
		out[k] = s.shardKeys(tenantID, saleID, k)
	}
	return out, nil
}

// takeStock runs a script that takes stock for r on its home shard (reserve, rereserve, adopt).
// On a sharded sale a home shard short of stock is refilled from the others (short), and the
// script runs again. reserving: the script is reserve.lua, which tells a short shard (SHORT)
// from one that found the others empty a moment ago ('drained': SOLD_OUT, INSUFFICIENT); the
// others answer SOLD_OUT and INSUFFICIENT for a short shard.
func (s *Inventory) takeStock(ctx context.Context, r domain.Reservation, reserving bool,
	run func(k saleKeys) ([]string, error)) ([]string, error) {
	k, home, n, err := s.home(ctx, r)
	if err != nil {
		return nil, err
	}
	reply, err := run(k)
	if err != nil || n == 1 {
		return reply, err
	}
	return s.short(ctx, r, home, n, reserving, reply, func() ([]string, error) { return run(k) })
}

// short deals with a reply that found r's home shard short: reserve.lua's SHORT (the units
// left there, and the buyer's allowance), or SOLD_OUT and INSUFFICIENT from the other scripts.
// It moves the shortfall from the other shards (gather) and runs the script again (again), up
// to three times. The answers stay those of one inventory: sold out only when every shard is,
// over the limit before short of stock, and a shortfall names the units left in the sale.
func (s *Inventory) short(ctx context.Context, r domain.Reservation, home, n int, reserving bool, reply []string,
	again func() ([]string, error)) ([]string, error) {
	for range 3 {
		left, allowed, isShort := shortOf(reply, r.Quantity, reserving)
		if !isShort {
			return reply, nil
		}
		if allowed < r.Quantity {
			rem, err := s.remaining(ctx, r.TenantID, r.SaleID, n)
			if err != nil || rem == 0 {
				return []string{"SOLD_OUT"}, err
			}
			return []string{"LIMIT", strconv.Itoa(allowed)}, nil
		}
		got, fenced, err := s.gather(ctx, r.TenantID, r.SaleID, home, n, r.Quantity-left)
		switch {
		case err != nil:
			return nil, err
		case got == 0 && fenced:
			return []string{"FENCED", "1000"}, nil
		case got == 0:
			// Units given by a shard but not yet taken by another (a purchase's move under way)
			// are in no shard's stock: the sale is not sold out until they land.
			moving, err := s.inTransit(ctx, r.TenantID, r.SaleID, n)
			if err != nil {
				return nil, err
			}
			if moving {
				return []string{"FENCED", "200"}, nil
			}
			s.drained(ctx, r.TenantID, r.SaleID, home)
			if left == 0 {
				return []string{"SOLD_OUT"}, nil
			}
			return []string{"INSUFFICIENT", strconv.Itoa(left)}, nil
		}
		if reply, err = again(); err != nil {
			return nil, err
		}
	}
	if _, _, isShort := shortOf(reply, r.Quantity, reserving); isShort {
		// Other purchases took what was gathered three times over: the sale is selling its
		// last units. The buyer tries again in a moment.
		return []string{"FENCED", "1000"}, nil
	}
	return reply, nil
}

// drainedFor is how long a shard whose purchase found every other shard empty answers as if it
// were the whole sale (reserve.lua's 'drained'), unless stock comes back first (undrain).
const drainedFor = time.Second

// drained marks shard home of the sale as having found every other shard empty, so that its
// next purchases answer sold out in one round trip, not one per shard. Best effort.
func (s *Inventory) drained(ctx context.Context, tenantID, saleID uuid.UUID, home int) {
	_ = s.rdb.HSet(ctx, s.shardKeys(tenantID, saleID, home).inv, "drained", time.Now().Add(drainedFor).UnixMilli()).Err()
}

// undrain clears the drained marks of every shard of a sale: stock came back (a release, a
// raise). Best effort: a mark left lasts drainedFor at most.
func (s *Inventory) undrain(ctx context.Context, tenantID, saleID uuid.UUID) {
	shards, err := s.allShards(ctx, tenantID, saleID)
	if err != nil || len(shards) == 1 {
		return
	}
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range shards {
			p.HDel(ctx, k.inv, "drained")
		}
		return nil
	})
}

// shortOf reads a reply that found its shard short: the units left there and the buyer's
// allowance (unknown for the scripts that check it after the stock: as much as asked). From
// reserve.lua (reserving) only SHORT is.
func shortOf(reply []string, qty int, reserving bool) (left, allowed int, short bool) {
	if reserving && reply[0] != "SHORT" {
		return 0, 0, false
	}
	switch reply[0] {
	case "SHORT":
		left, _ = strconv.Atoi(reply[1])
		allowed, _ = strconv.Atoi(reply[2])
		return left, allowed, true
	case "SOLD_OUT":
		return 0, qty, true
	case "INSUFFICIENT":
		left, _ = strconv.Atoi(reply[1])
		return left, qty, true
	}
	return 0, 0, false
}

// remaining is the units left in every shard of a sale.
func (s *Inventory) remaining(ctx context.Context, tenantID, saleID uuid.UUID, n int) (int, error) {
	cmds := make([]*goredis.StringCmd, n)
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for k := range n {
			cmds[k] = p.HGet(ctx, s.shardKeys(tenantID, saleID, k).inv, "remaining")
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, fmt.Errorf("read the shards' stock: %w", err)
	}
	sum := 0
	for _, c := range cmds {
		v, _ := c.Int()
		sum += max(v, 0)
	}
	return sum, nil
}

// inTransit reports whether any shard of the sale has given units another has not taken yet
// (a transfer record in its xout).
func (s *Inventory) inTransit(ctx context.Context, tenantID, saleID uuid.UUID, n int) (bool, error) {
	cmds := make([]*goredis.IntCmd, n)
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for k := range n {
			cmds[k] = p.HLen(ctx, s.shardKeys(tenantID, saleID, k).xout)
		}
		return nil
	}); err != nil {
		return false, fmt.Errorf("read the shards' transfers: %w", err)
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}

// gather moves up to want units (or a batch, see give.lua) from the sale's other shards to
// home, the next shard first, until it has them or every shard was asked. Each move is a
// transfer: given (give.lua: out of the donor, recorded there), taken (take.lua: into home,
// once), settled (the record and the mark deleted). A transfer cut short is finished by
// SettleTransfers. fenced: a shard was fenced (restored, rolled back, being rebuilt), or a
// move waits for its replica, so nothing gathered does not mean sold out.
func (s *Inventory) gather(ctx context.Context, tenantID, saleID uuid.UUID, home, n, want int) (got int, fenced bool, err error) {
	to := s.shardKeys(tenantID, saleID, home)
	for i := 1; i < n && got < want; i++ {
		from := s.shardKeys(tenantID, saleID, (home+i)%n)
		id := uuid.NewString()
		reply, acked, err := s.run(ctx, from, giveScript, []string{from.inv, from.xout}, id, want-got, home, n)
		if err != nil {
			return got, fenced, fmt.Errorf("give stock: %w", err)
		}
		switch {
		case reply[0] == "FENCED":
			fenced = true
			continue
		case reply[0] != "OK":
			continue // EMPTY, NO_SALE
		case !acked:
			fenced = true // no replica has the gift yet: SettleTransfers takes it once it is safe
			continue
		}
		units, _ := strconv.Atoi(reply[1])
		done, err := s.finish(ctx, from, to, id, units, reply[2])
		if err != nil {
			return got, fenced, err
		}
		if done {
			got += units
		} else {
			fenced = true
		}
	}
	return got, fenced, nil
}

// finish takes a given transfer into its receiver and settles it; false if the receiver is
// fenced (the transfer stays recorded, for SettleTransfers or the rebuild). A receiver rebuilt
// since the gift (STALE) or gone (NO_SALE) has the units counted by its rebuild: the transfer
// is settled without them.
func (s *Inventory) finish(ctx context.Context, from, to saleKeys, id string, units int, gen string) (bool, error) {
	reply, _, err := s.run(ctx, to, takeScript, []string{to.inv, to.xin}, id, units, gen)
	if err != nil {
		return false, fmt.Errorf("take stock: %w", err)
	}
	if reply[0] == "FENCED" {
		return false, nil
	}
	// The receiver keeps its mark for good (until a rebuild, whose new generation refuses a
	// stale take anyway): a settle pass that read the donor's record before this settles it may
	// still take the transfer, and the mark makes that a no-op.
	if err := s.rdb.HDel(ctx, from.xout, id).Err(); err != nil {
		return false, fmt.Errorf("settle transfer: %w", err)
	}
	return reply[0] == "OK" || reply[0] == "HAS", nil
}

// run runs a script on one shard; with REDIS_DURABILITY=replica (s.wait) it is followed by a
// WAIT on the same connection to the shard's master, and acked reports whether enough replicas
// have its writes.
func (s *Inventory) run(ctx context.Context, k saleKeys, sc *goredis.Script, keys []string, args ...any) ([]string, bool, error) {
	if s.wait.Replicas == 0 {
		reply, err := sc.Run(ctx, s.rdb, keys, args...).StringSlice()
		return reply, true, err
	}
	var c goredis.Cmdable = s.rdb
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		master, err := cc.MasterForKey(ctx, k.inv)
		if err != nil {
			return nil, false, err
		}
		c = master
	}
	var evalCmd *goredis.Cmd
	waitCmd := goredis.NewIntCmd(ctx, "wait", s.wait.Replicas, s.wait.Timeout.Milliseconds())
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		evalCmd = sc.Eval(ctx, p, keys, args...)
		_ = p.Process(ctx, waitCmd)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	reply, err := evalCmd.StringSlice()
	return reply, waitCmd.Val() >= int64(s.wait.Replicas), err
}

// SettleTransfers implements ports.InventoryStore: transfers between the sale's shards that
// were given but not taken for transferAge (their purchase died, or the receiver was fenced)
// are taken and settled.
func (s *Inventory) SettleTransfers(ctx context.Context, tenantID, saleID uuid.UUID) (int, error) {
	shards, err := s.allShards(ctx, tenantID, saleID)
	if err != nil || len(shards) == 1 {
		return 0, err
	}
	cmds := make([]*goredis.MapStringStringCmd, len(shards))
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for k, sk := range shards {
			cmds[k] = p.HGetAll(ctx, sk.xout)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read transfers: %w", err)
	}
	old := time.Now().Add(-transferAge).UnixMilli()
	settled := 0
	for k, cmd := range cmds {
		for id, rec := range cmd.Val() {
			// The record is the receiver shard, units, unix ms and generation (give.lua).
			f := strings.SplitN(rec, ":", 4)
			if len(f) != 4 {
				continue
			}
			to, _ := strconv.Atoi(f[0])
			units, _ := strconv.Atoi(f[1])
			at, _ := strconv.ParseInt(f[2], 10, 64)
			if at > old || to < 0 || to >= len(shards) {
				continue
			}
			done, err := s.finish(ctx, shards[k], shards[to], id, units, f[3])
			if err != nil {
				return settled, err
			}
			if done {
				settled++
			}
		}
	}
	return settled, nil
}

// saleRemaining is the units left in r's sale after a reservation that left shardLeft in its
// shard. For a sharded sale it is a lower bound, read only when the shard is empty: then it
// adds up every shard (0 only when every shard is empty, which more than one of the purchases
// taking the last units at once may see).
func (s *Inventory) saleRemaining(ctx context.Context, r domain.Reservation, shardLeft int) (int, error) {
	if shardLeft > 0 {
		return shardLeft, nil
	}
	n, err := s.shardCount(ctx, r.TenantID, r.SaleID)
	if err != nil || n == 1 {
		return shardLeft, err
	}
	return s.remaining(ctx, r.TenantID, r.SaleID, n)
}
