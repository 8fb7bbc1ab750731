// Package sessiontest is the contract of ports.SessionStore: refresh tokens rotate once, a
// rotated one replayed revokes its session, a wrong one changes nothing, sessions end when
// revoked (one, or all of a user's) or when their TTL passes, which every rotation resets. Every
// implementation runs it (Redis, under a key prefix of its own; the in-memory store).
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Run runs the contract against the stores newStore returns, one per case, in parallel.
func Run(t *testing.T, newStore func(t *testing.T) ports.SessionStore) {
	cases := []struct {
		name string
		run  func(f *fixture)
	}{
		{"CreateAndRotate", testCreateAndRotate},
		{"RotateUnknownSession", testRotateUnknown},
		{"WrongSecretLeavesTheSessionAlone", testWrongSecret},
		{"RevokeSession", testRevokeSession},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"SessionsExpireAndRotationResetsTheTTL", testExpiry},
		{"ConcurrentRotationWinsOnce", testConcurrentRotation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(&fixture{t: t, ctx: context.Background(), s: newStore(t)})
		})
	}
}

type fixture struct {
	t   *testing.T
	ctx context.Context
	s   ports.SessionStore
}

func newSession(tenantID, userID uuid.UUID) domain.Session {
	return domain.Session{ID: uuid.New(), TenantID: tenantID, UserID: userID}
}

func (f *fixture) create(sess domain.Session, hash string, ttl time.Duration) {
	f.t.Helper()
	if err := f.s.CreateSession(f.ctx, sess, hash, ttl); err != nil {
		f.t.Fatalf("CreateSession: %v", err)
	}
}

func (f *fixture) active(id uuid.UUID) bool {
	f.t.Helper()
	ok, err := f.s.SessionActive(f.ctx, id)
	if err != nil {
		f.t.Fatalf("SessionActive: %v", err)
	}
	return ok
}

// rotate rotates presented to next and fails unless the session comes back whole.
func (f *fixture) rotate(sess domain.Session, presented, next string, ttl time.Duration) {
	f.t.Helper()
	got, err := f.s.RotateRefresh(f.ctx, sess.ID, presented, next, ttl)
	if err != nil || got != sess {
		f.t.Fatalf("RotateRefresh(%s) = %+v, %v, want %+v", presented, got, err, sess)
	}
}

// refused fails unless rotating presented fails with exactly want (one code, not the other).
func (f *fixture) refused(what string, id uuid.UUID, presented string, want *domain.Error) {
	f.t.Helper()
	_, err := f.s.RotateRefresh(f.ctx, id, presented, "next-"+presented, time.Hour)
	other := domain.ErrInvalidRefreshToken
	if want == domain.ErrInvalidRefreshToken {
		other = domain.ErrRefreshTokenReused
	}
	if !errors.Is(err, want) || errors.Is(err, other) {
		f.t.Fatalf("%s: error = %v, want %s", what, err, want.Code)
	}
}

func testCreateAndRotate(f *fixture) {
	sess := newSession(uuid.New(), uuid.New())
	if f.active(sess.ID) {
		f.t.Fatal("a session never created is active")
	}
	f.create(sess, "h1", 10*time.Minute)
	if !f.active(sess.ID) {
		f.t.Fatal("a created session is not active")
	}
	f.rotate(sess, "h1", "h2", 20*time.Minute)
	f.rotate(sess, "h2", "h3", time.Minute)
	if !f.active(sess.ID) {
		f.t.Fatal("session inactive after rotations")
	}
	// h1 was rotated away: presenting it is a replay, which revokes the session...
	f.refused("replayed h1", sess.ID, "h1", domain.ErrRefreshTokenReused)
	if f.active(sess.ID) {
		f.t.Fatal("session still active after a replayed refresh token")
	}
	// ...so even the current hash no longer works, and nothing brings the session back.
	f.refused("current h3 after the replay", sess.ID, "h3", domain.ErrInvalidRefreshToken)
	if f.active(sess.ID) {
		f.t.Fatal("a failed rotation brought the session back")
	}
}

func testRotateUnknown(f *fixture) {
	id := uuid.New()
	f.refused("unknown session", id, "h1", domain.ErrInvalidRefreshToken)
	if f.active(id) {
		f.t.Fatal("rotating an unknown session created it")
	}
}

// A session id is no secret (every access token carries it): a refresh with a secret that was
// never issued is refused and revokes nothing. Only a secret that was current once, replayed,
// ends the session.
func testWrongSecret(f *fixture) {
	sess := newSession(uuid.New(), uuid.New())
	f.create(sess, "h1", time.Hour)
	f.refused("a guessed secret", sess.ID, "never-issued", domain.ErrInvalidRefreshToken)
	if !f.active(sess.ID) {
		f.t.Fatal("a guessed secret revoked the session")
	}
	f.rotate(sess, "h1", "h2", time.Hour)
	f.refused("the rotated secret replayed", sess.ID, "h1", domain.ErrRefreshTokenReused)
	if f.active(sess.ID) {
		f.t.Fatal("a replayed secret must revoke the session")
	}
}

func testRevokeSession(f *fixture) {
	tenant, user := uuid.New(), uuid.New()
	a, b := newSession(tenant, user), newSession(tenant, user)
	f.create(a, "ha", time.Hour)
	f.create(b, "hb", time.Hour)
	if err := f.s.RevokeSession(f.ctx, a.ID); err != nil {
		f.t.Fatalf("RevokeSession: %v", err)
	}
	if f.active(a.ID) {
		f.t.Fatal("revoked session still active")
	}
	f.refused("rotate a revoked session", a.ID, "ha", domain.ErrInvalidRefreshToken)
	if !f.active(b.ID) {
		f.t.Fatal("revoking one session revoked another of the same user")
	}
	f.rotate(b, "hb", "hb2", time.Hour)
	// Revoking twice, or an unknown session, is not an error.
	for _, id := range []uuid.UUID{a.ID, uuid.New()} {
		if err := f.s.RevokeSession(f.ctx, id); err != nil {
			f.t.Fatalf("RevokeSession(%s) again or unknown: %v", id, err)
		}
	}
}

func testRevokeUserSessions(f *fixture) {
	tenant, otherTenant, userA, userB := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	var aSessions []domain.Session
	for i := range 3 {
		sess := newSession(tenant, userA)
		f.create(sess, fmt.Sprintf("a%d", i), time.Hour)
		aSessions = append(aSessions, sess)
	}
	// One of A's sessions already ended on its own: it is not counted again.
	gone := newSession(tenant, userA)
	f.create(gone, "gone", time.Hour)
	if err := f.s.RevokeSession(f.ctx, gone.ID); err != nil {
		f.t.Fatalf("RevokeSession: %v", err)
	}
	bSession := newSession(tenant, userB)
	f.create(bSession, "b", time.Hour)
	aElsewhere := newSession(otherTenant, userA)
	f.create(aElsewhere, "a-other", time.Hour)

	revoke := func(tenantID, userID uuid.UUID, want int) {
		f.t.Helper()
		if n, err := f.s.RevokeUserSessions(f.ctx, tenantID, userID); err != nil || n != want {
			f.t.Fatalf("RevokeUserSessions = %d, %v, want %d", n, err, want)
		}
	}
	revoke(tenant, userA, 3)
	for _, sess := range aSessions {
		if f.active(sess.ID) {
			f.t.Errorf("session %s of user A still active", sess.ID)
		}
	}
	if !f.active(bSession.ID) || !f.active(aElsewhere.ID) {
		f.t.Fatal("user B's session, or user A's in another tenant, was revoked")
	}
	revoke(tenant, userA, 0)
	revoke(otherTenant, userA, 1)
	if f.active(aElsewhere.ID) || !f.active(bSession.ID) {
		f.t.Fatal("logout-all in the other tenant revoked the wrong sessions")
	}
}

// A session ends when its TTL passes. A rotation resets the TTL, so a session kept alive by
// refreshes outlives the TTL it was created with, and logout-all still reaches it.
func testExpiry(f *fixture) {
	tenant := uuid.New()
	expiring := newSession(tenant, uuid.New())
	f.create(expiring, "e1", 300*time.Millisecond)
	kept := newSession(tenant, uuid.New())
	const createTTL = 1500 * time.Millisecond
	created := time.Now()
	f.create(kept, "h1", createTTL)
	f.rotate(kept, "h1", "h2", time.Hour)

	time.Sleep(time.Until(created.Add(createTTL + 300*time.Millisecond)))
	if f.active(expiring.ID) {
		f.t.Fatal("a session outlived its TTL")
	}
	f.refused("rotate an expired session", expiring.ID, "e1", domain.ErrInvalidRefreshToken)
	if n, err := f.s.RevokeUserSessions(f.ctx, tenant, expiring.UserID); err != nil || n != 0 {
		f.t.Fatalf("RevokeUserSessions(expired) = %d, %v, want 0", n, err)
	}
	if !f.active(kept.ID) {
		f.t.Fatal("the refreshed session expired with its creation TTL")
	}
	if n, err := f.s.RevokeUserSessions(f.ctx, tenant, kept.UserID); err != nil || n != 1 || f.active(kept.ID) {
		f.t.Fatalf("RevokeUserSessions = %d, %v (session active: %v), want 1 and the session revoked", n, err, f.active(kept.ID))
	}
}

// Racing rotations of one token: exactly one wins; the first after it sees a replay and revokes
// the session, any later one finds no session.
func testConcurrentRotation(f *fixture) {
	sess := newSession(uuid.New(), uuid.New())
	f.create(sess, "h1", time.Hour)
	const n = 20
	type result struct {
		sess domain.Session
		next string
		err  error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			next := fmt.Sprintf("next-%d", i)
			got, err := f.s.RotateRefresh(f.ctx, sess.ID, "h1", next, time.Hour)
			results[i] = result{got, next, err}
		})
	}
	close(start)
	wg.Wait()

	var ok, reused, invalid int
	var winner string
	for _, res := range results {
		switch {
		case res.err == nil:
			ok++
			winner = res.next
			if res.sess != sess {
				f.t.Errorf("winning rotation returned %+v, want %+v", res.sess, sess)
			}
		case errors.Is(res.err, domain.ErrRefreshTokenReused):
			reused++
		case errors.Is(res.err, domain.ErrInvalidRefreshToken):
			invalid++
		default:
			f.t.Errorf("unexpected error: %v", res.err)
		}
	}
	if ok != 1 || reused < 1 || ok+reused+invalid != n {
		f.t.Fatalf("ok=%d reused=%d invalid=%d, want ok=1, reused>=1, total %d", ok, reused, invalid, n)
	}
	if f.active(sess.ID) {
		f.t.Fatal("session still active after a replay was detected")
	}
	f.refused("the winner's token after the revocation", sess.ID, winner, domain.ErrInvalidRefreshToken)
}
