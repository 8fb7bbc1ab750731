-- +goose Up
-- The broker the outbox relay publishes to, named by the incarnation of its log, and when a
-- relay first saw it. An in-memory (embedded) broker that restarts comes back empty under a new
-- incarnation: the relay then marks every event published since the old one was first seen as
-- unpublished again, and sends it again (consumers apply an event once, whatever its copies).
CREATE TABLE outbox_broker (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    incarnation text NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox_broker;
