package memory

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Sessions implements ports.SessionStore as the Redis store does (rotate_refresh.lua): the
// current refresh hash of each session and the hashes it had before, until the session expires.
type Sessions struct {
	now func() time.Time

	mu       sync.Mutex
	sessions map[uuid.UUID]*session
}

type session struct {
	s       domain.Session
	hash    string
	used    map[string]bool
	expires time.Time
}

var _ ports.SessionStore = (*Sessions)(nil)

// NewSessions keeps time by now (time.Now if nil).
func NewSessions(now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{now: now, sessions: map[uuid.UUID]*session{}}
}

// live is the session if it exists and has not expired; s.mu is held.
func (s *Sessions) live(id uuid.UUID) (*session, bool) {
	sess, ok := s.sessions[id]
	if ok && !s.now().Before(sess.expires) {
		delete(s.sessions, id)
		return nil, false
	}
	return sess, ok
}

// CreateSession implements ports.SessionStore.
func (s *Sessions) CreateSession(_ context.Context, sess domain.Session, refreshHash string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sess.ID] = &session{s: sess, hash: refreshHash, used: map[string]bool{}, expires: s.now().Add(ttl)}
	return nil
}

// RotateRefresh implements ports.SessionStore.
func (s *Sessions) RotateRefresh(_ context.Context, id uuid.UUID, presented, next string, ttl time.Duration) (domain.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.live(id)
	switch {
	case !ok:
		return domain.Session{}, domain.ErrInvalidRefreshToken.WithDetail("the refresh token is unknown, expired or revoked")
	case sess.hash != presented && sess.used[presented]:
		delete(s.sessions, id)
		return domain.Session{}, domain.ErrRefreshTokenReused.WithDetail(
			"this refresh token was already used; the session is revoked, log in again")
	case sess.hash != presented:
		return domain.Session{}, domain.ErrInvalidRefreshToken.WithDetail("the refresh token is unknown, expired or revoked")
	}
	sess.used[presented] = true
	sess.hash, sess.expires = next, s.now().Add(ttl)
	return sess.s, nil
}

// SessionActive implements ports.SessionStore.
func (s *Sessions) SessionActive(_ context.Context, id uuid.UUID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live(id)
	return ok, nil
}

// RevokeSession implements ports.SessionStore.
func (s *Sessions) RevokeSession(_ context.Context, id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// RevokeUserSessions implements ports.SessionStore.
func (s *Sessions) RevokeUserSessions(_ context.Context, tenantID, userID uuid.UUID) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.sessions {
		if sess, ok := s.live(id); ok && sess.s.TenantID == tenantID && sess.s.UserID == userID {
			delete(s.sessions, id)
			n++
		}
	}
	return n, nil
}

// StoredSession is a live session as the store keeps it.
type StoredSession struct {
	Session     domain.Session
	RefreshHash string
}

// Session reads a live session: an inspection for tests.
func (s *Sessions) Session(id uuid.UUID) (StoredSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.live(id)
	if !ok {
		return StoredSession{}, false
	}
	return StoredSession{Session: sess.s, RefreshHash: sess.hash}, true
}

// Count is how many sessions are live: an inspection for tests.
func (s *Sessions) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.sessions {
		if _, ok := s.live(id); ok {
			n++
		}
	}
	return n
}
