package redis_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	redisadapter "github.com/flashsale/flashsale/internal/adapters/redis"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/ports/sessiontest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestSessionContract runs the ports.SessionStore contract against the Redis store, each case
// under its own key prefix.
func TestSessionContract(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) ports.SessionStore {
		s, _ := newSessions(t)
		return s
	})
}

// What the port does not show: the keys (all under the prefix, a session's under its hash tag)
// and their TTLs, the user's index outliving every session in it, and failed calls leaving no key.

func newSessions(t *testing.T) (*redisadapter.Sessions, testutil.Redis) {
	t.Helper()
	r := testutil.NewRedis(t)
	return redisadapter.NewSessions(r.Client, r.Prefix), r
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

func TestSessionKeysAndTTLs(t *testing.T) {
	t.Parallel()
	s, r := newSessions(t)
	ctx := context.Background()
	sess := domain.Session{ID: uuid.New(), TenantID: uuid.New(), UserID: uuid.New()}
	const createTTL, rotateTTL = 10 * time.Minute, 20 * time.Minute

	// Rotating an unknown session leaves no key behind.
	if _, err := s.RotateRefresh(ctx, sess.ID, "h0", "h1", time.Minute); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Fatalf("rotate an unknown session: %v", err)
	}
	if keys := testutil.Keys(ctx, r.Client, r.Prefix+":*"); len(keys) != 0 {
		t.Fatalf("rotating an unknown session left keys %v", keys)
	}

	if err := s.CreateSession(ctx, sess, "h1", createTTL); err != nil {
		t.Fatalf("CreateSession: %v", err)
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

	// A rotation resets the TTL; reset, not extended: a shorter ttl shortens it.
	if _, err := s.RotateRefresh(ctx, sess.ID, "h1", "h2", rotateTTL); err != nil {
		t.Fatal(err)
	}
	wantPTTL(t, r, sessKey(r, sess.ID), rotateTTL)
	if _, err := s.RotateRefresh(ctx, sess.ID, "h2", "h3", time.Minute); err != nil {
		t.Fatal(err)
	}
	wantPTTL(t, r, sessKey(r, sess.ID), time.Minute)

	// A replay deletes the session's keys, and a failed rotation after it recreates none.
	if _, err := s.RotateRefresh(ctx, sess.ID, "h1", "x1", rotateTTL); !errors.Is(err, domain.ErrRefreshTokenReused) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := s.RotateRefresh(ctx, sess.ID, "h3", "h4", rotateTTL); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Fatalf("rotate after the replay: %v", err)
	}
	for _, k := range []string{sessKey(r, sess.ID), sessKey(r, sess.ID) + ":used"} {
		if n, _ := r.Client.Exists(ctx, k).Result(); n != 0 {
			t.Errorf("key %s survived the replay", k)
		}
	}
}

// The user's index outlives every session in it: a refresh extends it, and logout-all deletes it.
func TestSessionUserIndex(t *testing.T) {
	t.Parallel()
	s, r := newSessions(t)
	ctx := context.Background()
	sess := domain.Session{ID: uuid.New(), TenantID: uuid.New(), UserID: uuid.New()}
	if err := s.CreateSession(ctx, sess, "h1", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, sess.ID, "h1", "h2", time.Hour); err != nil {
		t.Fatal(err)
	}
	// Absolute expiry times (PEXPIRETIME), so the order of the two reads does not matter.
	sessExp := r.Client.PExpireTime(ctx, sessKey(r, sess.ID)).Val()
	indexExp := r.Client.PExpireTime(ctx, userKey(r, sess.TenantID, sess.UserID)).Val()
	if sessExp <= 0 || indexExp < sessExp {
		t.Errorf("after a refresh the user's index expires at %v, before the session (%v)", indexExp, sessExp)
	}
	if n, err := s.RevokeUserSessions(ctx, sess.TenantID, sess.UserID); err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions = %d, %v", n, err)
	}
	if n, _ := r.Client.Exists(ctx, userKey(r, sess.TenantID, sess.UserID)).Result(); n != 0 {
		t.Error("the user's session index survived logout-all")
	}
}
