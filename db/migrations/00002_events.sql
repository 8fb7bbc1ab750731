-- +goose Up
-- Transactional outbox: an event is written in the same transaction as the change it reports,
-- and a relay publishes it to Kafka afterwards. Nothing is lost between the two.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,            -- the event id, deterministic per fact
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    topic        text NOT NULL,
    key          text NOT NULL,               -- partition key
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
-- The relay reads the unpublished rows, oldest first; published rows drop out of the index.
CREATE INDEX outbox_unpublished_idx ON outbox (created_at, id) WHERE published_at IS NULL;

-- Events a consumer group has already applied: its effects and this row commit together,
-- so a redelivered event changes nothing.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Analytics: per-sale figures from order.confirmed events.
CREATE TABLE sale_stats (
    sale_id        uuid PRIMARY KEY REFERENCES sales (id),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    orders         integer NOT NULL DEFAULT 0,
    units          integer NOT NULL DEFAULT 0,
    revenue_cents  bigint NOT NULL DEFAULT 0,
    currency       text NOT NULL,
    first_order_at timestamptz NOT NULL,
    last_order_at  timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Inventory sync: the sold counter PostgreSQL keeps for each sale, compared with Redis.
CREATE TABLE sale_counters (
    sale_id    uuid PRIMARY KEY REFERENCES sales (id),
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    sold       integer NOT NULL DEFAULT 0,
    drift      integer NOT NULL DEFAULT 0,   -- Redis minus PostgreSQL at the last check
    checked_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE sale_counters;
DROP TABLE sale_stats;
DROP TABLE processed_events;
DROP TABLE outbox;
