package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Tickets implements ports.TicketStore: random one-time tickets, redeemed with GETDEL.
type Tickets struct {
	rdb    goredis.UniversalClient
	prefix string
}

// NewTickets stores under prefix (REDIS_PREFIX).
func NewTickets(rdb goredis.UniversalClient, prefix string) *Tickets {
	return &Tickets{rdb: rdb, prefix: prefix}
}

var _ ports.TicketStore = (*Tickets)(nil)

func (t *Tickets) key(ticket string) string { return t.prefix + ":wsticket:" + ticket }

// IssueTicket implements ports.TicketStore.
func (t *Tickets) IssueTicket(ctx context.Context, p domain.Principal, ttl time.Duration) (_ string, err error) {
	defer func() { err = unavailable(err) }()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	ticket := base64.RawURLEncoding.EncodeToString(b)
	raw, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	if err := t.rdb.Set(ctx, t.key(ticket), raw, ttl).Err(); err != nil {
		return "", fmt.Errorf("store ticket: %w", err)
	}
	return ticket, nil
}

// RedeemTicket implements ports.TicketStore.
func (t *Tickets) RedeemTicket(ctx context.Context, ticket string) (_ domain.Principal, _ bool, err error) {
	defer func() { err = unavailable(err) }()
	raw, err := t.rdb.GetDel(ctx, t.key(ticket)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return domain.Principal{}, false, nil
	}
	if err != nil {
		return domain.Principal{}, false, fmt.Errorf("redeem ticket: %w", err)
	}
	var p domain.Principal
	if err := json.Unmarshal(raw, &p); err != nil {
		return domain.Principal{}, false, fmt.Errorf("decode ticket: %w", err)
	}
	return p, true, nil
}
