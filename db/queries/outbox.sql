-- name: InsertOutboxEvent :exec
INSERT INTO outbox (id, tenant_id, topic, key, type, payload, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO NOTHING;

-- name: ClaimOutboxBatch :many
-- Rows stay locked until the claiming transaction ends; other relays skip them.
SELECT id, tenant_id, topic, key, type, payload, created_at, attempts
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
