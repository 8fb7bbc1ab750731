package chaos

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// sale builds facts for a sale of stock units, limit per buyer, where every accepted order is
// confirmed and every consumer group applied every event once.
type sale struct {
	f     Facts
	users []uuid.UUID
}

func newSale(stock, limit, buyers int) *sale {
	s := &sale{f: Facts{Stock: stock, Limit: limit, Rows: map[uuid.UUID]OrderRow{}, Unwritten: map[uuid.UUID]string{},
		Groups: map[string]GroupFacts{}}}
	for range buyers {
		s.users = append(s.users, uuid.New())
	}
	for _, g := range consumerGroups {
		s.f.Groups[g.group] = GroupFacts{Processed: map[uuid.UUID]bool{}, UnitsEffect: g.role == "inventory-sync"}
	}
	s.f.Verified.Remaining = stock
	return s
}

// accept records an order of units answered 202 to buyer; row says what PostgreSQL holds:
// "confirmed" (and applied by every group), "failed", or "" (none).
func (s *sale) accept(buyer, units int, row string) uuid.UUID {
	id := uuid.New()
	s.f.Accepted = append(s.f.Accepted, AcceptedOrder{OrderID: id, User: s.users[buyer], Units: units})
	switch row {
	case "confirmed":
		s.confirm(id, buyer, units)
	case "failed":
		s.f.Rows[id] = OrderRow{User: s.users[buyer], Units: units}
	}
	return id
}

func (s *sale) confirm(id uuid.UUID, buyer, units int) {
	s.f.Rows[id] = OrderRow{User: s.users[buyer], Units: units, Confirmed: true}
	s.f.Verified.Sold += units
	s.f.Verified.Remaining -= units
	for name, g := range s.f.Groups {
		g.Processed[id] = true
		if g.UnitsEffect {
			g.Applied += units
		} else {
			g.Applied++
		}
		s.f.Groups[name] = g
	}
}

func TestEvaluateCleanSaleHoldsEveryInvariant(t *testing.T) {
	s := newSale(5, 2, 3)
	s.accept(0, 2, "confirmed")
	s.accept(1, 1, "confirmed")
	s.accept(2, 2, "confirmed")
	o := Evaluate(s.f)
	if !o.OK() {
		t.Fatalf("violations on a clean sale: %v", o.Violations())
	}
	if o.Accepted != 3 || o.Rows != 3 || o.Lost != 0 || o.Oversold != 0 {
		t.Fatalf("outcome %+v", o)
	}
}

func TestEvaluateCountsEachViolation(t *testing.T) {
	tests := []struct {
		name  string
		build func(s *sale)
		check func(t *testing.T, o Outcome)
	}{
		{"accepted without a row, still pending, counts against the stock", func(s *sale) {
			s.accept(0, 2, "confirmed")
			s.accept(1, 2, "confirmed")
			s.accept(2, 2, "") // pending: 6 units promised of 5
		}, func(t *testing.T, o Outcome) {
			if o.Lost != 1 || o.Pending != 1 || o.Oversold != 1 {
				t.Errorf("lost %d pending %d oversold %d, want 1 1 1", o.Lost, o.Pending, o.Oversold)
			}
		}},
		{"an order Redis and PostgreSQL both forgot is still a promise", func(s *sale) {
			s.accept(0, 2, "confirmed")
			s.accept(1, 2, "confirmed")
			id := s.accept(2, 2, "")
			s.f.Unwritten[id] = statusUnknown
		}, func(t *testing.T, o Outcome) {
			if o.Lost != 1 || o.Unknown != 1 || o.Oversold != 1 {
				t.Errorf("lost %d unknown %d oversold %d, want 1 1 1", o.Lost, o.Unknown, o.Oversold)
			}
		}},
		{"a failed or released order is lost but gave its stock back", func(s *sale) {
			s.accept(0, 2, "confirmed")
			s.accept(1, 2, "confirmed")
			s.accept(2, 1, "confirmed")
			s.accept(2, 1, "failed")
			id := s.accept(2, 1, "")
			s.f.Unwritten[id] = "failed"
		}, func(t *testing.T, o Outcome) {
			if o.Lost != 2 || o.Failed != 1 || o.Released != 1 || o.Oversold != 0 || o.AboveLimit != 0 {
				t.Errorf("outcome %+v", o)
			}
		}},
		{"confirmed rows beyond the stock", func(s *sale) {
			for i := range 3 {
				s.accept(i, 2, "confirmed")
			}
			s.f.Verified.Remaining = 0 // the API says 0 left of 5, 6 sold
		}, func(t *testing.T, o Outcome) {
			if o.Oversold != 1 || o.StockDrift != 1 {
				t.Errorf("oversold %d drift %d, want 1 and +1", o.Oversold, o.StockDrift)
			}
		}},
		{"a buyer above the limit, counting a pending order", func(s *sale) {
			s.accept(0, 2, "confirmed")
			s.accept(0, 1, "")
		}, func(t *testing.T, o Outcome) {
			if o.AboveLimit != 1 {
				t.Errorf("above limit %d, want 1", o.AboveLimit)
			}
		}},
		{"second order for a key, from the answers and from PostgreSQL", func(s *sale) {
			s.accept(0, 1, "confirmed")
			s.f.KeysWithSecondOrder = 2
			s.f.Verified.DuplicateKeys = 1
		}, func(t *testing.T, o Outcome) {
			if o.SecondOrders != 3 {
				t.Errorf("second orders %d, want 3", o.SecondOrders)
			}
		}},
		{"remaining stock that does not match the rows", func(s *sale) {
			s.accept(0, 1, "confirmed")
			s.f.Verified.Remaining = 2 // 5 - 1 = 4 expected
		}, func(t *testing.T, o Outcome) {
			if o.StockDrift != -2 {
				t.Errorf("drift %d, want -2", o.StockDrift)
			}
		}},
		{"events missing and applied twice, per group", func(s *sale) {
			a := s.accept(0, 2, "confirmed")
			b := s.accept(1, 1, "confirmed")
			email := s.f.Groups["flashsale-email"]
			delete(email.Processed, b) // b's mail never arrived
			email.Applied = 3          // a's mail arrived twice
			s.f.Groups["flashsale-email"] = email
			inv := s.f.Groups["flashsale-inventory-sync"]
			inv.Applied += 2 // a counted twice (2 units)
			s.f.Groups["flashsale-inventory-sync"] = inv
			an := s.f.Groups["flashsale-analytics"]
			delete(an.Processed, a)
			an.Applied--
			s.f.Groups["flashsale-analytics"] = an
		}, func(t *testing.T, o Outcome) {
			if o.EventsMissing["flashsale-email"] != 1 || o.EventsDuplicate["flashsale-email"] != 2 {
				t.Errorf("email missing %d twice %d, want 1 2", o.EventsMissing["flashsale-email"], o.EventsDuplicate["flashsale-email"])
			}
			if o.EventsMissing["flashsale-analytics"] != 1 || o.EventsDuplicate["flashsale-analytics"] != 0 {
				t.Errorf("analytics missing %d twice %d, want 1 0", o.EventsMissing["flashsale-analytics"], o.EventsDuplicate["flashsale-analytics"])
			}
			if o.EventsMissing["flashsale-inventory-sync"] != 0 || o.EventsDuplicate["flashsale-inventory-sync"] != 2 {
				t.Errorf("inventory-sync missing %d twice %d, want 0 2",
					o.EventsMissing["flashsale-inventory-sync"], o.EventsDuplicate["flashsale-inventory-sync"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSale(5, 2, 3)
			tt.build(s)
			o := Evaluate(s.f)
			tt.check(t, o)
			if o.OK() || len(o.Violations()) == 0 {
				t.Errorf("no violation reported: %+v", o)
			}
		})
	}
}

func TestViolationsInWords(t *testing.T) {
	o := Outcome{Lost: 3, StockDrift: -2, EventsMissing: map[string]int{"flashsale-email": 1, "flashsale-analytics": 0},
		EventsDuplicate: map[string]int{}}
	got := o.Violations()
	want := []string{"3 accepted orders without a confirmed row", "remaining stock off by -2", "1 events not applied by flashsale-email"}
	if !slices.Equal(got, want) {
		t.Fatalf("Violations() = %q, want %q", got, want)
	}
}

func TestPurchaseAnswers(t *testing.T) {
	first, second := uuid.New(), uuid.New()
	replayed := &purchase{attempts: []attempt{{status: 202, orderID: first}, {status: 202, orderID: first}}}
	doubled := &purchase{attempts: []attempt{{status: 202, orderID: first}, {status: 202, orderID: second}}}
	refused := &purchase{attempts: []attempt{{status: 409, problem: "sold-out"}, {err: errTest}}}
	if n := secondOrders([]*purchase{replayed, doubled, refused}); n != 1 {
		t.Errorf("secondOrders = %d, want 1 (the key answered with two order ids)", n)
	}
	got := statuses([]*purchase{replayed, doubled, refused})
	want := map[string]int{"202": 4, "409 sold-out": 1, "error (connection reset)": 1}
	if formatCounts(got) != formatCounts(want) {
		t.Errorf("statuses = %s, want %s", formatCounts(got), formatCounts(want))
	}
	forgotten := &purchase{attempts: []attempt{{status: 202, orderID: first}, {status: 401}, {status: 409, problem: "sold-out"}}}
	waiting := &purchase{attempts: []attempt{{status: 202, orderID: first}, {status: 409, problem: problemInFlight}, {err: errTest}}}
	if n := forgottenAnswers([]*purchase{replayed, doubled, refused, forgotten, waiting}); n != 1 {
		t.Errorf("forgottenAnswers = %d, want 1 (202, then sold-out for the same key)", n)
	}
	if !refused.failed() || doubled.failed() {
		t.Error("failed(): a purchase whose last attempt got no answer failed; one answered 202 did not")
	}
}

// errTest is shaped like net/http's: `Post "url": read tcp a->b: connection reset`.
var errTest = &url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1", Err: errors.New("read tcp 127.0.0.1:2->127.0.0.1:1: connection reset")}

// TestEvaluateRoom: an accepted order counts as admitted only when its buyer's admission was
// spent by that very purchase (its key on the record); live admissions count against the
// remaining stock, expired and past ones do not.
func TestEvaluateRoom(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	future, past := "A:1000500", "A:999000"
	rf := &RoomFacts{Now: now,
		Admissions: map[string]string{
			"u1": "U:1000500:k1",                     // bought with it
			"u2": "U:1000500:k9",                     // spent by another key than its order's
			"u4": future, "u5": future, "u6": future, // live
			"u7": past, "u8": "X:999000", // ended unused
		},
		Keys: map[string]string{"o1": "u1:k1", "o2": "u2:k2", "o3": "u3:k3"}, // u3: no admission at all
	}
	if un, over := evaluateRoom(rf, 3, 1); un != 2 || over != 0 {
		t.Fatalf("evaluateRoom with 3 left = %d unadmitted, %d over; want 2, 0", un, over)
	}
	if _, over := evaluateRoom(rf, 3, 2); over != 1 { // 3 units at 2 serve 2 admissions: 3 live is 1 over
		t.Fatalf("evaluateRoom with 3 left at 2 a shopper: %d over, want 1", over)
	}
	if _, over := evaluateRoom(rf, 0, 1); over != 3 {
		t.Fatalf("evaluateRoom sold out: %d over, want 3", over)
	}
}
