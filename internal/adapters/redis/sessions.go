package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/lua"
)

var rotateRefreshScript = goredis.NewScript(lua.RotateRefresh)

// Sessions implements ports.SessionStore: a hash per session (TTL = refresh token lifetime) and a
// set of session ids per user for logout-all.
type Sessions struct {
	rdb    goredis.UniversalClient
	prefix string
}

// NewSessions stores under prefix (REDIS_PREFIX).
func NewSessions(rdb goredis.UniversalClient, prefix string) *Sessions {
	return &Sessions{rdb: rdb, prefix: prefix}
}

var _ ports.SessionStore = (*Sessions)(nil)

// A session's keys share the {session id} hash tag, so the rotation script runs on one slot.
func (s *Sessions) key(id uuid.UUID) string { return sessionKey(s.prefix, id) }

// sessionKey is a session's record, in a slot of its own.
func sessionKey(prefix string, id uuid.UUID) string { return prefix + ":sess:{" + id.String() + "}" }

func (s *Sessions) usedKey(id uuid.UUID) string { return s.key(id) + ":used" }

func (s *Sessions) userKey(tenantID, userID uuid.UUID) string {
	return s.prefix + ":usess:" + tenantID.String() + ":" + userID.String()
}

// CreateSession implements ports.SessionStore.
func (s *Sessions) CreateSession(ctx context.Context, sess domain.Session, refreshHash string, ttl time.Duration) (err error) {
	defer func() { err = unavailable(err) }()
	uk := s.userKey(sess.TenantID, sess.UserID)
	_, err = s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, s.key(sess.ID), "t", sess.TenantID.String(), "u", sess.UserID.String(), "h", refreshHash)
		p.PExpire(ctx, s.key(sess.ID), ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	// The user's index lives in another slot; it only serves logout-all and outlives no session.
	if _, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.SAdd(ctx, uk, sess.ID.String())
		p.PExpire(ctx, uk, ttl)
		return nil
	}); err != nil {
		return fmt.Errorf("index session: %w", err)
	}
	return nil
}

// RotateRefresh implements ports.SessionStore.
func (s *Sessions) RotateRefresh(ctx context.Context, id uuid.UUID, presented, next string, ttl time.Duration) (_ domain.Session, err error) {
	defer func() { err = unavailable(err) }()
	reply, err := rotateRefreshScript.Run(ctx, s.rdb, []string{s.key(id), s.usedKey(id)}, presented, next, ttl.Milliseconds()).StringSlice()
	if err != nil {
		return domain.Session{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	switch reply[0] {
	case "OK":
		tenantID, err1 := uuid.Parse(reply[1])
		userID, err2 := uuid.Parse(reply[2])
		if err1 != nil || err2 != nil {
			return domain.Session{}, fmt.Errorf("rotate refresh token: corrupt session %s", id)
		}
		// The session now lives ttl longer: so must the user's index, or logout-all would miss it.
		// Best effort: the rotation is done, and failing now would make the client's retry of
		// the old token look like a replay.
		uk := s.userKey(tenantID, userID)
		_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.SAdd(ctx, uk, id.String())
			p.PExpire(ctx, uk, ttl)
			return nil
		})
		return domain.Session{ID: id, TenantID: tenantID, UserID: userID}, nil
	case "REUSED":
		return domain.Session{}, domain.ErrRefreshTokenReused.WithDetail(
			"this refresh token was already used; the session is revoked, log in again")
	default:
		return domain.Session{}, domain.ErrInvalidRefreshToken.WithDetail("the refresh token is unknown, expired or revoked")
	}
}

// SessionActive implements ports.SessionStore.
func (s *Sessions) SessionActive(ctx context.Context, id uuid.UUID) (_ bool, err error) {
	defer func() { err = unavailable(err) }()
	n, err := s.rdb.Exists(ctx, s.key(id)).Result()
	if err != nil {
		return false, fmt.Errorf("session active: %w", err)
	}
	return n == 1, nil
}

// RevokeSession implements ports.SessionStore.
func (s *Sessions) RevokeSession(ctx context.Context, id uuid.UUID) (err error) {
	defer func() { err = unavailable(err) }()
	if err := s.rdb.Del(ctx, s.key(id), s.usedKey(id)).Err(); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeUserSessions implements ports.SessionStore.
func (s *Sessions) RevokeUserSessions(ctx context.Context, tenantID, userID uuid.UUID) (_ int, err error) {
	defer func() { err = unavailable(err) }()
	uk := s.userKey(tenantID, userID)
	ids, err := s.rdb.SMembers(ctx, uk).Result()
	if err != nil {
		return 0, fmt.Errorf("revoke user sessions: %w", err)
	}
	cmds := make([]*goredis.IntCmd, len(ids))
	// One DEL per key: sessions live in different cluster slots.
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			sid, err := uuid.Parse(id)
			if err != nil {
				continue
			}
			cmds[i] = p.Del(ctx, s.key(sid), s.usedKey(sid))
		}
		// Only the ids read: a session opened meanwhile stays indexed (and alive).
		members := make([]any, len(ids))
		for i, id := range ids {
			members[i] = id
		}
		if len(members) > 0 {
			p.SRem(ctx, uk, members...)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoke user sessions: %w", err)
	}
	revoked := 0
	for _, c := range cmds {
		if c != nil && c.Val() > 0 {
			revoked++
		}
	}
	return revoked, nil
}
