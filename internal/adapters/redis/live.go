package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// Live carries live events between API nodes over Redis pub/sub (the brief's "Redis adapter"):
// every node publishes what happens on it and receives what happens anywhere.
type Live struct {
	rdb     goredis.UniversalClient
	channel string
}

// NewLive uses the channel <prefix>:live.
func NewLive(rdb goredis.UniversalClient, prefix string) *Live {
	return &Live{rdb: rdb, channel: prefix + ":live"}
}

var _ ports.Broadcaster = (*Live)(nil)

// Envelope is a live event on the wire between nodes.
type Envelope struct {
	Type     string          `json:"type"`
	TenantID uuid.UUID       `json:"tenantId"`
	SaleID   uuid.UUID       `json:"saleId"`
	UserID   *uuid.UUID      `json:"userId,omitempty"`
	Data     json.RawMessage `json:"data"`
	TS       time.Time       `json:"ts"`
}

// Broadcast implements ports.Broadcaster.
func (l *Live) Broadcast(ctx context.Context, e domain.LiveEvent) error {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("encode live event data: %w", err)
	}
	raw, err := json.Marshal(Envelope{Type: e.Type, TenantID: e.TenantID, SaleID: e.SaleID, UserID: e.UserID, Data: data, TS: e.TS})
	if err != nil {
		return fmt.Errorf("encode live event: %w", err)
	}
	if err := l.rdb.Publish(ctx, l.channel, raw).Err(); err != nil {
		return fmt.Errorf("publish live event: %w", err)
	}
	return nil
}

// Subscribe calls deliver for every live event published by any node until ctx ends. go-redis
// reconnects and resubscribes by itself; events published while a node is disconnected are
// missed (live events are state snapshots: the next one corrects the picture).
func (l *Live) Subscribe(ctx context.Context, log *slog.Logger, deliver func(Envelope)) error {
	sub := l.rdb.Subscribe(ctx, l.channel)
	if _, err := sub.Receive(ctx); err != nil { // wait for the subscription to be in place
		_ = sub.Close()
		return fmt.Errorf("subscribe %s: %w", l.channel, err)
	}
	go func() {
		defer sub.Close()
		ch := sub.Channel(goredis.WithChannelSize(4096))
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				var e Envelope
				if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
					log.Warn("undecodable live event dropped", "err", err)
					continue
				}
				deliver(e)
			}
		}
	}()
	return nil
}
