package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

func newSessions(t *testing.T) (*redisadapter.Sessions, testutil.Redis) {
	t.Helper()
	r := testutil.NewRedis(t)
	return redisadapter.NewSessions(r.Client, r.Prefix), r
}

func newSession(tenantID, userID uuid.UUID) domain.Session {
	return domain.Session{ID: uuid.New(), TenantID: tenantID, UserID: userID}
}

func createSession(t *testing.T, s *redisadapter.Sessions, sess domain.Session, hash string, ttl time.Duration) {
	t.Helper()
	if err := s.CreateSession(context.Background(), sess, hash, ttl); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func sessionActive(t *testing.T, s *redisadapter.Sessions, id uuid.UUID) bool {
	t.Helper()
	ok, err := s.SessionActive(context.Background(), id)
	if err != nil {
		t.Fatalf("SessionActive: %v", err)
	}
	return ok
}

// wantCode fails unless err is the domain error want (and not merely some error).
func wantCode(t *testing.T, what string, err error, want *domain.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %s", what, err, want.Code)
	}
}

// wantPTTL fails unless the key expires within (ttl-slack, ttl].
func wantPTTL(t *testing.T, r testutil.Redis, key string, ttl time.Duration) {
	t.Helper()
	const slack = 5 * time.Second
	got, err := r.Client.PTTL(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	if got <= ttl-slack || got > ttl {
		t.Fatalf("PTTL %s = %v, want within (%v, %v]", key, got, ttl-slack, ttl)
	}
}

func sessKey(r testutil.Redis, id uuid.UUID) string { return r.Prefix + ":sess:{" + id.String() + "}" }

func userKey(r testutil.Redis, tenantID, userID uuid.UUID) string {
	return r.Prefix + ":usess:" + tenantID.String() + ":" + userID.String()
}

func TestSessionsCreateRotate(t *testing.T) {
	t.Parallel()
	s, r := newSessions(t)
	ctx := context.Background()
	sess := newSession(uuid.New(), uuid.New())
	const createTTL, rotateTTL = 10 * time.Minute, 20 * time.Minute

	if sessionActive(t, s, sess.ID) {
		t.Fatal("a session never created is active")
	}
	createSession(t, s, sess, "h1", createTTL)
	if !sessionActive(t, s, sess.ID) {
		t.Fatal("a created session is not active")
	}

	// Every key lives under the prefix: the session and the user's index, nothing else.
	keys := testutil.Keys(ctx, r.Client, r.Prefix+":*")
	slices.Sort(keys)
	want := []string{sessKey(r, sess.ID), userKey(r, sess.TenantID, sess.UserID)}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys under the prefix = %v, want %v", keys, want)
	}
	for _, id := range []string{sess.ID.String(), sess.UserID.String()} {
		for _, k := range testutil.Keys(ctx, r.Client, "*"+id+"*") {
			if !strings.HasPrefix(k, r.Prefix+":") {
				t.Errorf("key %q is outside the prefix %q", k, r.Prefix)
			}
		}
	}
	wantPTTL(t, r, sessKey(r, sess.ID), createTTL)
	wantPTTL(t, r, userKey(r, sess.TenantID, sess.UserID), createTTL)

	// The current hash rotates; the session comes back whole and its TTL is reset.
	got, err := s.RotateRefresh(ctx, sess.ID, "h1", "h2", rotateTTL)
	if err != nil {
		t.Fatalf("RotateRefresh(h1): %v", err)
	}
	if got != sess {
		t.Fatalf("RotateRefresh(h1) = %+v, want %+v", got, sess)
	}
	wantPTTL(t, r, sessKey(r, sess.ID), rotateTTL)

	// Reset, not extended: a shorter ttl shortens it.
	if got, err := s.RotateRefresh(ctx, sess.ID, "h2", "h3", time.Minute); err != nil || got != sess {
		t.Fatalf("RotateRefresh(h2) = %+v, %v, want %+v", got, err, sess)
	}
	wantPTTL(t, r, sessKey(r, sess.ID), time.Minute)
	if !sessionActive(t, s, sess.ID) {
		t.Fatal("session inactive after rotations")
	}

	// h1 was rotated away: presenting it is a replay, which revokes the session...
	_, err = s.RotateRefresh(ctx, sess.ID, "h1", "x1", rotateTTL)
	wantCode(t, "replayed h1", err, domain.ErrRefreshTokenReused)
	if sessionActive(t, s, sess.ID) {
		t.Fatal("session still active after a replayed refresh token")
	}
	// ...so even the current hash no longer works.
	_, err = s.RotateRefresh(ctx, sess.ID, "h3", "h4", rotateTTL)
	wantCode(t, "current h3 after the replay", err, domain.ErrInvalidRefreshToken)
	if n, _ := r.Client.Exists(ctx, sessKey(r, sess.ID)).Result(); n != 0 {
		t.Fatal("a failed rotation recreated the session key")
	}
}

func TestSessionsRotateUnknown(t *testing.T) {
	t.Parallel()
	s, r := newSessions(t)
	ctx := context.Background()
	_, err := s.RotateRefresh(ctx, uuid.New(), "h1", "h2", time.Minute)
	wantCode(t, "unknown session", err, domain.ErrInvalidRefreshToken)
	if keys := testutil.Keys(ctx, r.Client, r.Prefix+":*"); len(keys) != 0 {
		t.Fatalf("rotating an unknown session left keys %v", keys)
	}
}

func TestSessionsRevokeSession(t *testing.T) {
	t.Parallel()
	s, _ := newSessions(t)
	ctx := context.Background()
	tenant, user := uuid.New(), uuid.New()
	a, b := newSession(tenant, user), newSession(tenant, user)
	createSession(t, s, a, "ha", time.Hour)
	createSession(t, s, b, "hb", time.Hour)

	if err := s.RevokeSession(ctx, a.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if sessionActive(t, s, a.ID) {
		t.Fatal("revoked session still active")
	}
	_, err := s.RotateRefresh(ctx, a.ID, "ha", "ha2", time.Hour)
	wantCode(t, "rotate a revoked session", err, domain.ErrInvalidRefreshToken)
	if !sessionActive(t, s, b.ID) {
		t.Fatal("revoking one session revoked another of the same user")
	}
	if _, err := s.RotateRefresh(ctx, b.ID, "hb", "hb2", time.Hour); err != nil {
		t.Fatalf("rotate the other session: %v", err)
	}
	// Revoking twice, or an unknown session, is not an error.
	if err := s.RevokeSession(ctx, a.ID); err != nil {
		t.Fatalf("RevokeSession again: %v", err)
	}
	if err := s.RevokeSession(ctx, uuid.New()); err != nil {
		t.Fatalf("RevokeSession(unknown): %v", err)
	}
}

func TestSessionsRevokeUserSessions(t *testing.T) {
	t.Parallel()
	s, r := newSessions(t)
	ctx := context.Background()
	tenant, otherTenant, userA, userB := uuid.New(), uuid.New(), uuid.New(), uuid.New()

	var aSessions []domain.Session
	for i := range 3 {
		sess := newSession(tenant, userA)
		createSession(t, s, sess, fmt.Sprintf("a%d", i), time.Hour)
		aSessions = append(aSessions, sess)
	}
	// One of A's sessions already ended on its own: it is not counted again.
	gone := newSession(tenant, userA)
	createSession(t, s, gone, "gone", time.Hour)
	if err := s.RevokeSession(ctx, gone.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	bSession := newSession(tenant, userB)
	createSession(t, s, bSession, "b", time.Hour)
	aElsewhere := newSession(otherTenant, userA)
	createSession(t, s, aElsewhere, "a-other", time.Hour)

	n, err := s.RevokeUserSessions(ctx, tenant, userA)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 3 {
		t.Fatalf("RevokeUserSessions = %d, want 3", n)
	}
	for _, sess := range aSessions {
		if sessionActive(t, s, sess.ID) {
			t.Errorf("session %s of user A still active", sess.ID)
		}
	}
	if !sessionActive(t, s, bSession.ID) {
		t.Error("user B's session was revoked")
	}
	if !sessionActive(t, s, aElsewhere.ID) {
		t.Error("user A's session in another tenant was revoked")
	}
	if n, _ := r.Client.Exists(ctx, userKey(r, tenant, userA)).Result(); n != 0 {
		t.Error("user A's session index survived logout-all")
	}

	if n, err := s.RevokeUserSessions(ctx, tenant, userA); err != nil || n != 0 {
		t.Fatalf("second RevokeUserSessions = %d, %v, want 0", n, err)
	}
	if n, err := s.RevokeUserSessions(ctx, otherTenant, userA); err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions(other tenant) = %d, %v, want 1", n, err)
	}
	if sessionActive(t, s, aElsewhere.ID) || !sessionActive(t, s, bSession.ID) {
		t.Fatal("logout-all in the other tenant revoked the wrong sessions")
	}
}

// A session kept alive by refreshes stays reachable by logout-all after the TTL it was created
// with has passed: the user's index must outlive every session in it.
func TestSessionsRotatedSessionStaysIndexed(t *testing.T) {
	t.Parallel()
	s, r := newSessions(t)
	ctx := context.Background()
	sess := newSession(uuid.New(), uuid.New())
	const createTTL = 1500 * time.Millisecond
	created := time.Now()
	createSession(t, s, sess, "h1", createTTL)
	if _, err := s.RotateRefresh(ctx, sess.ID, "h1", "h2", time.Hour); err != nil {
		t.Fatalf("RotateRefresh (within %v of creating the session): %v", createTTL, err)
	}
	// Absolute expiry times (PEXPIRETIME), so the order of the two reads does not matter.
	sessExp := r.Client.PExpireTime(ctx, sessKey(r, sess.ID)).Val()
	indexExp := r.Client.PExpireTime(ctx, userKey(r, sess.TenantID, sess.UserID)).Val()
	if sessExp <= 0 || indexExp < sessExp {
		t.Errorf("after a refresh the user's index expires at %v, before the session (%v)", indexExp, sessExp)
	}

	time.Sleep(time.Until(created.Add(createTTL + 300*time.Millisecond)))
	if !sessionActive(t, s, sess.ID) {
		t.Fatal("the refreshed session expired with its creation TTL")
	}
	n, err := s.RevokeUserSessions(ctx, sess.TenantID, sess.UserID)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 1 || sessionActive(t, s, sess.ID) {
		t.Fatalf("RevokeUserSessions = %d (session active: %v), want 1 and the session revoked",
			n, sessionActive(t, s, sess.ID))
	}
}

func TestSessionsConcurrentRotation(t *testing.T) {
	t.Parallel()
	s, _ := newSessions(t)
	ctx := context.Background()
	sess := newSession(uuid.New(), uuid.New())
	createSession(t, s, sess, "h1", time.Hour)

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
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			next := fmt.Sprintf("next-%d", i)
			got, err := s.RotateRefresh(ctx, sess.ID, "h1", next, time.Hour)
			results[i] = result{got, next, err}
		}()
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
				t.Errorf("winning rotation returned %+v, want %+v", res.sess, sess)
			}
		case errors.Is(res.err, domain.ErrRefreshTokenReused):
			reused++
		case errors.Is(res.err, domain.ErrInvalidRefreshToken):
			invalid++
		default:
			t.Errorf("unexpected error: %v", res.err)
		}
	}
	// Exactly one rotation wins; the first one after it sees a replay and revokes the session,
	// and any later one finds no session.
	if ok != 1 || reused < 1 || ok+reused+invalid != n {
		t.Fatalf("ok=%d reused=%d invalid=%d, want ok=1, reused>=1, total %d", ok, reused, invalid, n)
	}
	if sessionActive(t, s, sess.ID) {
		t.Fatal("session still active after a replay was detected")
	}
	_, err := s.RotateRefresh(ctx, sess.ID, winner, "after", time.Hour)
	wantCode(t, "the winner's token after the revocation", err, domain.ErrInvalidRefreshToken)
}

// TestSessionsWrongSecretLeavesTheSessionAlone: a session id is no secret (every access token
// carries it); a refresh with a secret that was never issued is refused and revokes nothing.
// Only a secret that was current once, replayed, ends the session.
func TestSessionsWrongSecretLeavesTheSessionAlone(t *testing.T) {
	t.Parallel()
	s, _ := newSessions(t)
	ctx := context.Background()
	sess := newSession(uuid.New(), uuid.New())
	createSession(t, s, sess, "h1", time.Hour)
	if _, err := s.RotateRefresh(ctx, sess.ID, "never-issued", "h2", time.Hour); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Fatalf("a guessed secret: %v, want ErrInvalidRefreshToken", err)
	}
	if !sessionActive(t, s, sess.ID) {
		t.Fatal("a guessed secret revoked the session")
	}
	if _, err := s.RotateRefresh(ctx, sess.ID, "h1", "h2", time.Hour); err != nil {
		t.Fatalf("the real secret after a guess: %v", err)
	}
	if _, err := s.RotateRefresh(ctx, sess.ID, "h1", "h3", time.Hour); !errors.Is(err, domain.ErrRefreshTokenReused) {
		t.Fatalf("the rotated secret replayed: %v, want ErrRefreshTokenReused", err)
	}
	if sessionActive(t, s, sess.ID) {
		t.Fatal("a replayed secret must revoke the session")
	}
}
