-- name: InsertOutboxEvent :exec
INSERT INTO outbox (id, tenant_id, topic, key, type, payload, created_at, traceparent)
VALUES ($1, $2, $3, $4, $5, $6, $7, sqlc.narg(traceparent))
ON CONFLICT (id) DO NOTHING;

-- name: ClaimOutboxBatch :many
-- Rows stay locked until the claiming transaction ends; other relays skip them.
SELECT id, tenant_id, topic, key, type, payload, created_at, attempts, traceparent
FROM outbox
WHERE published_at IS NULL
ORDER BY created_at, id
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: MarkOutboxPublished :exec
UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY(sqlc.arg(ids)::uuid[]);

-- name: MarkOutboxFailed :exec
UPDATE outbox SET attempts = attempts + 1, last_error = sqlc.arg(last_error)::text
WHERE id = ANY(sqlc.arg(ids)::uuid[]);

-- name: OutboxBacklog :one
SELECT count(*) AS unpublished, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest_seconds
FROM outbox WHERE published_at IS NULL;

-- name: LockOutboxBroker :one
-- The incarnation recorded last; relays noticing a new one take turns.
SELECT incarnation, seen_at FROM outbox_broker WHERE singleton FOR UPDATE;

-- name: RecordOutboxBroker :exec
INSERT INTO outbox_broker (singleton, incarnation, seen_at) VALUES (true, $1, now())
ON CONFLICT (singleton) DO UPDATE SET incarnation = EXCLUDED.incarnation, seen_at = EXCLUDED.seen_at;

-- name: RequeuePublishedSince :execrows
-- Events the broker lost: unpublished again, for the relay to send again.
UPDATE outbox SET published_at = NULL, last_error = sqlc.arg(reason)::text
WHERE published_at >= sqlc.arg(since)::timestamptz;
