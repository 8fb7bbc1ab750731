package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

func newIdempotency(t *testing.T) (*redisadapter.Idempotency, testutil.Redis, ports.IdempotencyScope) {
	t.Helper()
	r := testutil.NewRedis(t)
	return redisadapter.NewIdempotency(r.Client, r.Prefix), r,
		ports.IdempotencyScope{TenantID: uuid.New(), UserID: uuid.New(), Key: "client-key-1"}
}

func claim(t *testing.T, s *redisadapter.Idempotency, sc ports.IdempotencyScope, fp string, lease time.Duration) *ports.IdempotencyRecord {
	t.Helper()
	rec, err := s.Claim(context.Background(), sc, fp, lease)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return rec
}

func TestIdempotencyClaim(t *testing.T) {
	t.Parallel()
	s, r, sc := newIdempotency(t)
	ctx := context.Background()

	if rec := claim(t, s, sc, "fp-1", time.Minute); rec != nil {
		t.Fatalf("first Claim = %+v, want nil (claimed)", rec)
	}
	// The claim lives for the lease.
	keys := testutil.Keys(ctx, r.Client, r.Prefix+":*")
	if len(keys) != 1 {
		t.Fatalf("keys after Claim = %v, want one under the prefix", keys)
	}
	if ttl := r.Client.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("claim TTL = %v, want within (0, 1m]", ttl)
	}
	// A second Claim, with the same or another fingerprint, sees the pending record.
	for _, fp := range []string{"fp-1", "fp-2"} {
		rec := claim(t, s, sc, fp, time.Minute)
		want := ports.IdempotencyRecord{Fingerprint: "fp-1"}
		if rec == nil || *rec != want {
			t.Fatalf("Claim(%s) again = %+v, want %+v", fp, rec, want)
		}
	}
	// Keys are scoped: another user, another tenant or another key are free.
	for name, other := range map[string]ports.IdempotencyScope{
		"other user":   {TenantID: sc.TenantID, UserID: uuid.New(), Key: sc.Key},
		"other tenant": {TenantID: uuid.New(), UserID: sc.UserID, Key: sc.Key},
		"other key":    {TenantID: sc.TenantID, UserID: sc.UserID, Key: "client-key-2"},
	} {
		if rec := claim(t, s, other, "fp-x", time.Minute); rec != nil {
			t.Errorf("%s: Claim = %+v, want nil", name, rec)
		}
	}
}

func TestIdempotencyCompleteReplaysTheOutcome(t *testing.T) {
	t.Parallel()
	confirmed := time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC)
	order := &domain.Order{
		ID: uuid.New(), TenantID: uuid.New(), SaleID: uuid.New(), UserID: uuid.New(), Quantity: 2,
		IdempotencyKey: "client-key-1", Status: domain.OrderPending, UnitPriceCents: 1999, AmountCents: 3998,
		Currency: "EUR", CreatedAt: time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC), ConfirmedAt: &confirmed,
	}
	cases := []struct {
		name    string
		outcome ports.PlaceOrderOutcome
	}{
		{"order", ports.PlaceOrderOutcome{Order: order}},
		{"order without confirmation", ports.PlaceOrderOutcome{Order: &domain.Order{
			ID: uuid.New(), TenantID: uuid.New(), SaleID: uuid.New(), UserID: uuid.New(), Quantity: 1,
			IdempotencyKey: "k", Status: domain.OrderPending, Currency: "USD", CreatedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		}}},
		{"refusal", ports.PlaceOrderOutcome{ErrCode: domain.ErrSoldOut.Code, ErrDetail: "the sale has no stock left"}},
		{"refusal without detail", ports.PlaceOrderOutcome{ErrCode: domain.ErrSaleNotActive.Code}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, r, sc := newIdempotency(t)
			ctx := context.Background()
			if rec := claim(t, s, sc, "fp", time.Minute); rec != nil {
				t.Fatalf("Claim = %+v", rec)
			}
			if err := s.Complete(ctx, sc, ports.IdempotencyRecord{Fingerprint: "fp", Outcome: tc.outcome}, time.Hour); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			keys := testutil.Keys(ctx, r.Client, r.Prefix+":*")
			if len(keys) != 1 {
				t.Fatalf("keys = %v", keys)
			}
			if ttl := r.Client.PTTL(ctx, keys[0]).Val(); ttl <= time.Minute || ttl > time.Hour {
				t.Fatalf("record TTL = %v, want the completion TTL (1h), not the lease", ttl)
			}

			for range 2 { // replaying does not consume the record
				rec := claim(t, s, sc, "fp-other", time.Minute)
				if rec == nil {
					t.Fatal("Claim after Complete = nil, want the stored record")
				}
				if !rec.Done || rec.Fingerprint != "fp" {
					t.Fatalf("record = %+v, want done with fingerprint fp", rec)
				}
				got, want := rec.Outcome, tc.outcome
				if got.ErrCode != want.ErrCode || got.ErrDetail != want.ErrDetail {
					t.Fatalf("outcome error = %q %q, want %q %q", got.ErrCode, got.ErrDetail, want.ErrCode, want.ErrDetail)
				}
				if (got.Order == nil) != (want.Order == nil) {
					t.Fatalf("outcome order = %+v, want %+v", got.Order, want.Order)
				}
				if want.Order != nil {
					if msg := diffOrder(*got.Order, *want.Order); msg != "" {
						t.Fatalf("replayed order differs: %s", msg)
					}
				}
			}
		})
	}
}

// diffOrder compares orders field by field, times by instant.
func diffOrder(got, want domain.Order) string {
	gc, wc := got.ConfirmedAt, want.ConfirmedAt
	got.ConfirmedAt, want.ConfirmedAt = nil, nil
	if !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	if (gc == nil) != (wc == nil) || (gc != nil && !gc.Equal(*wc)) {
		return fmt.Sprintf("ConfirmedAt %v, want %v", gc, wc)
	}
	return ""
}

func TestIdempotencyForget(t *testing.T) {
	t.Parallel()
	s, _, sc := newIdempotency(t)
	ctx := context.Background()
	if rec := claim(t, s, sc, "fp-1", time.Minute); rec != nil {
		t.Fatalf("Claim = %+v", rec)
	}
	if err := s.Forget(ctx, sc); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if rec := claim(t, s, sc, "fp-2", time.Minute); rec != nil {
		t.Fatalf("Claim after Forget = %+v, want nil", rec)
	}
	if rec := claim(t, s, sc, "fp-3", time.Minute); rec == nil || rec.Fingerprint != "fp-2" || rec.Done {
		t.Fatalf("Claim = %+v, want the pending fp-2 claim", rec)
	}
	// Forgetting a key nobody holds is fine.
	if err := s.Forget(ctx, ports.IdempotencyScope{TenantID: uuid.New(), UserID: uuid.New(), Key: "none"}); err != nil {
		t.Fatalf("Forget(unknown): %v", err)
	}
}

// TestIdempotencyLeaseExpires: a claim whose holder died frees the key after its lease.
func TestIdempotencyLeaseExpires(t *testing.T) {
	t.Parallel()
	s, _, sc := newIdempotency(t)
	if rec := claim(t, s, sc, "fp-dead", 200*time.Millisecond); rec != nil {
		t.Fatalf("Claim = %+v", rec)
	}
	// Poll until the key is free again: only then does a Claim take it.
	testutil.WaitFor(t, 10*time.Second, "the lease to expire", func() bool {
		return claim(t, s, sc, "fp-next", time.Minute) == nil
	})
	if rec := claim(t, s, sc, "fp-3", time.Minute); rec == nil || rec.Fingerprint != "fp-next" {
		t.Fatalf("Claim after expiry = %+v, want the fp-next claim", rec)
	}
}

func TestIdempotencyConcurrentClaimsHaveOneWinner(t *testing.T) {
	t.Parallel()
	s, _, sc := newIdempotency(t)
	const n = 100
	type result struct {
		fp  string
		rec *ports.IdempotencyRecord
		err error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			fp := fmt.Sprintf("fp-%d", i)
			<-start
			rec, err := s.Claim(context.Background(), sc, fp, time.Minute)
			results <- result{fp, rec, err}
		})
	}
	close(start)
	wg.Wait()
	close(results)
	var winners []string
	var seen []string
	for r := range results {
		switch {
		case r.err != nil:
			t.Errorf("Claim: %v", r.err)
		case r.rec == nil:
			winners = append(winners, r.fp)
		default:
			seen = append(seen, r.rec.Fingerprint)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d claims won (%v), want exactly 1", len(winners), winners)
	}
	if len(seen) != n-1 {
		t.Fatalf("%d claims lost, want %d", len(seen), n-1)
	}
	for _, fp := range seen {
		if fp != winners[0] {
			t.Fatalf("a loser saw fingerprint %q, want the winner's %q", fp, winners[0])
		}
	}
}
