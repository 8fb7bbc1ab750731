-- +goose Up
-- The W3C traceparent of the request that produced the event (NULL: none was traced, or the row
-- predates tracing). The outbox relay sends it as the Kafka message's traceparent header, so
-- a purchase stays one trace from the HTTP request to each consumer.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent text;

-- +goose Down
ALTER TABLE outbox DROP COLUMN IF EXISTS traceparent;
