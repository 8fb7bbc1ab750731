package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/loadtest"
)

// Facts is one look at a row's sale after the load: what the buyers were told, what
// PostgreSQL holds, what the API says is left, and what each consumer group applied. Checks
// are pure functions of it.
type Facts struct {
	Stock, Limit int
	// Verified is the load test's verifier on the same sale: units sold (confirmed rows),
	// accepted orders without a confirmed row, buyers above the limit in PostgreSQL, duplicate
	// keys in PostgreSQL, and the remaining stock the API reports.
	Verified loadtest.Report
	// Accepted is every distinct order a buyer was answered 202 for.
	Accepted []AcceptedOrder
	// Rows is every order row of the sale in PostgreSQL, by order id.
	Rows map[uuid.UUID]OrderRow
	// Unwritten is what the API says of each accepted order without a row: "pending" (its
	// reservation still holds the stock), "failed" (released: the stock went back on sale, but
	// the failure was never recorded in PostgreSQL) or "unknown" (nobody knows it: Redis lost it).
	Unwritten map[uuid.UUID]string
	// KeysWithSecondOrder is how many (buyer, idempotency key) pairs were answered 202 with
	// more than one order id.
	KeysWithSecondOrder int
	// Groups is what each consumer group applied, by group name.
	Groups map[string]GroupFacts
	// OutboxUnpublished is how many events of confirmed orders the relay has not published
	// (a detail: it tells events stuck in the outbox from events lost after it).
	OutboxUnpublished int
	// Room is what the sale's waiting room recorded (nil: the sale has none).
	Room *RoomFacts
}

// AcceptedOrder is an order a buyer was told was accepted.
type AcceptedOrder struct {
	OrderID uuid.UUID
	User    uuid.UUID
	Units   int
}

// OrderRow is an order row in PostgreSQL.
type OrderRow struct {
	User      uuid.UUID
	Units     int
	Confirmed bool // else failed
}

// GroupFacts is one consumer group's account of the sale's confirmed orders: which of their
// events it recorded as processed, and how many times its effect shows.
type GroupFacts struct {
	// Processed is the set of confirmed orders whose event the group recorded as processed
	// (processed_events), or, for email, that reached the mail sink at least once.
	Processed map[uuid.UUID]bool
	// Applied counts the effect: analytics, orders in sale_stats; inventory-sync, units in
	// sale_counters; email, mails delivered for the sale's events.
	Applied int
	// UnitsEffect is true when Applied counts units (inventory-sync), not orders.
	UnitsEffect bool
}

// Outcome is the invariants of a row, counted; every field but Accepted, Rows and Failed is a
// violation when non-zero.
type Outcome struct {
	Accepted int // distinct orders answered 202
	Rows     int // confirmed order rows
	// Accepted orders without a confirmed row, by what became of them: a failed row
	// (dead-lettered, stock given back); released without a row; still pending; unknown to
	// PostgreSQL and Redis alike.
	Failed, Released, Pending, Unknown int

	Lost            int // accepted orders without a confirmed row (the four above)
	Oversold        int // units of confirmed rows, pending and unknown accepted orders beyond the stock
	SecondOrders    int // keys answered with a second order, plus duplicate keys in PostgreSQL
	AboveLimit      int // buyers whose confirmed and pending units exceed the limit
	StockDrift      int // remaining (API) - (stock - sold)
	EventsMissing   map[string]int
	EventsDuplicate map[string]int
	// A sale with a waiting room: accepted orders whose purchase did not spend its buyer's
	// admission, and live admissions beyond what the remaining stock serves.
	Unadmitted, OverAdmitted int
}

// Violations lists the broken invariants, in words; empty when every one holds.
func (o Outcome) Violations() []string {
	var v []string
	add := func(n int, format string) {
		if n != 0 {
			v = append(v, fmt.Sprintf(format, n))
		}
	}
	add(o.Lost, "%d accepted orders without a confirmed row")
	add(o.Oversold, "%d units oversold")
	add(o.SecondOrders, "%d idempotency keys with a second order")
	add(o.AboveLimit, "%d buyers above the limit")
	add(o.StockDrift, "remaining stock off by %+d")
	add(o.Unadmitted, "%d accepted orders without their buyer's admission spent on them")
	add(o.OverAdmitted, "%d live admissions beyond what the remaining stock serves")
	for _, g := range sortedKeys(o.EventsMissing) {
		add(o.EventsMissing[g], "%d events not applied by "+g)
	}
	for _, g := range sortedKeys(o.EventsDuplicate) {
		add(o.EventsDuplicate[g], "%d events applied twice or more by "+g)
	}
	return v
}

// OK is true when every invariant holds.
func (o Outcome) OK() bool { return len(o.Violations()) == 0 }

// Evaluate counts every invariant of the facts.
func Evaluate(f Facts) Outcome {
	o := Outcome{Accepted: len(f.Accepted), EventsMissing: map[string]int{}, EventsDuplicate: map[string]int{}}
	units := map[uuid.UUID]int{} // per buyer: confirmed units + pending accepted units
	sold, confirmedOrders, confirmedUnits := 0, 0, map[uuid.UUID]int{}
	for id, r := range f.Rows {
		if r.Confirmed {
			o.Rows++
			sold += r.Units
			units[r.User] += r.Units
			confirmedOrders++
			confirmedUnits[id] = r.Units
		}
	}
	// An accepted order not written and not released is still a promise: its units count
	// against the stock and the buyer's limit.
	promised := 0
	for _, a := range f.Accepted {
		r, ok := f.Rows[a.OrderID]
		switch {
		case ok && r.Confirmed:
			continue
		case ok:
			o.Failed++
			continue
		case f.Unwritten[a.OrderID] == "failed":
			o.Released++
			continue
		case f.Unwritten[a.OrderID] == statusUnknown:
			o.Unknown++
		default:
			o.Pending++
		}
		promised += a.Units
		units[a.User] += a.Units
	}
	o.Lost = o.Failed + o.Released + o.Pending + o.Unknown
	o.Oversold = max(0, sold+promised-f.Stock)
	for _, n := range units {
		if n > f.Limit {
			o.AboveLimit++
		}
	}
	o.SecondOrders = f.KeysWithSecondOrder + f.Verified.DuplicateKeys
	o.StockDrift = f.Verified.Remaining - (f.Stock - f.Verified.Sold)
	if f.Room != nil {
		o.Unadmitted, o.OverAdmitted = evaluateRoom(f.Room, f.Verified.Remaining, f.Limit)
	}
	for g, gf := range f.Groups {
		processed, processedUnits := 0, 0
		for id, u := range confirmedUnits {
			if gf.Processed[id] {
				processed++
				processedUnits += u
			}
		}
		o.EventsMissing[g] = confirmedOrders - processed
		want := processed
		if gf.UnitsEffect {
			want = processedUnits
		}
		o.EventsDuplicate[g] = max(0, gf.Applied-want)
	}
	return o
}

// secondOrders counts the keys answered 202 with more than one order id.
func secondOrders(ps []*purchase) int {
	n := 0
	for _, p := range ps {
		if len(p.orderIDs()) > 1 {
			n++
		}
	}
	return n
}

// forgottenAnswers counts the keys answered 202 and later, for the same key, something that is
// neither that order nor an error of the moment (no answer, 5xx, 401, key in flight): a replay
// must repeat the first answer. A detail, not an invariant: no unit was taken twice.
func forgottenAnswers(ps []*purchase) int {
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		accepted := false
		for _, a := range p.attempts {
			switch {
			case a.status/100 == 2:
				accepted = true
			case accepted && a.err == nil && a.status < 500 && a.status != 401 && a.problem != problemInFlight:
				n++
				accepted = false // count the key once
			}
		}
		p.mu.Unlock()
	}
	return n
}

// orderIDs are the distinct order ids the purchase's attempts were answered with.
func (p *purchase) orderIDs() []uuid.UUID {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, a := range p.attempts {
		if a.status/100 == 2 && a.orderID != uuid.Nil && !seen[a.orderID] {
			seen[a.orderID] = true
			ids = append(ids, a.orderID)
		}
	}
	return ids
}

// statuses counts the answers of every attempt: "202", "409 sold-out", "error (connection
// refused)".
func statuses(ps []*purchase) map[string]int {
	out := map[string]int{}
	for _, p := range ps {
		p.mu.Lock()
		for _, a := range p.attempts {
			switch {
			case a.err != nil:
				out["error ("+errorKind(a.err)+")"]++
			case a.problem != "":
				out[fmt.Sprintf("%d %s", a.status, a.problem)]++
			default:
				out[fmt.Sprint(a.status)]++
			}
		}
		p.mu.Unlock()
	}
	return out
}

// errorKind names a failed request's error without its addresses: what follows the last
// colon of the chain ("connection refused", "EOF", "connection reset by peer").
func errorKind(err error) string {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout") {
		return "timeout"
	}
	return strings.TrimSpace(msg[strings.LastIndex(msg, ":")+1:])
}

func formatCounts(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
