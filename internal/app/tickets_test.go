package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
)

// memTickets is a TicketStore in memory: a ticket is redeemed once, and never after it expired.
type memTickets struct {
	mu      sync.Mutex
	now     func() time.Time
	tickets map[string]memTicket
	fail    error
}

type memTicket struct {
	p       domain.Principal
	expires time.Time
}

func (m *memTickets) IssueTicket(_ context.Context, p domain.Principal, ttl time.Duration) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tickets == nil {
		m.tickets = map[string]memTicket{}
	}
	t := uuid.NewString()
	m.tickets[t] = memTicket{p: p, expires: m.now().Add(ttl)}
	return t, nil
}

func (m *memTickets) RedeemTicket(_ context.Context, ticket string) (domain.Principal, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return domain.Principal{}, false, m.fail
	}
	t, ok := m.tickets[ticket]
	delete(m.tickets, ticket)
	if !ok || !m.now().Before(t.expires) {
		return domain.Principal{}, false, nil
	}
	return t.p, true, nil
}

func TestTicketIsRedeemedOnceForItsPrincipal(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	store := &memTickets{now: clk.Now}
	issue := app.IssueTicketHandler{Tickets: store, TTL: 30 * time.Second}
	redeem := app.RedeemTicketHandler{Tickets: store}
	buyer := domain.Principal{TenantID: uuid.New(), UserID: uuid.New(), SessionID: uuid.New(), Role: domain.RoleShopper}

	ticket, ttl, err := issue.Handle(ctx, buyer)
	if err != nil || ttl != 30*time.Second {
		t.Fatalf("issue: %q %v %v", ticket, ttl, err)
	}
	p, err := redeem.Handle(ctx, ticket)
	if err != nil || p != buyer {
		t.Fatalf("first redemption: %+v %v, want %+v", p, err, buyer)
	}
	if _, err := redeem.Handle(ctx, ticket); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("second redemption: %v, want ErrUnauthenticated", err)
	}

	late, _, _ := issue.Handle(ctx, buyer)
	clk.Advance(31 * time.Second)
	if _, err := redeem.Handle(ctx, late); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("expired ticket: %v, want ErrUnauthenticated", err)
	}
	if _, err := redeem.Handle(ctx, "never-issued"); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("unknown ticket: %v, want ErrUnauthenticated", err)
	}
}

func TestTicketStoreFailureIsNotAnAuthenticationAnswer(t *testing.T) {
	down := errors.New("redis down")
	_, err := app.RedeemTicketHandler{Tickets: &memTickets{now: time.Now, fail: down}}.Handle(context.Background(), "t")
	if !errors.Is(err, down) || errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("store failure: %v, want the store's error, not ErrUnauthenticated", err)
	}
}
