-- name: UpsertOrder :one
-- Writes an order once. Saving it again changes nothing, except that a confirmation replaces
-- an earlier failure (a dead letter retried). Returns whether the row was inserted.
INSERT INTO orders (id, tenant_id, sale_id, user_id, quantity, unit_price_cents, amount_cents,
                    currency, idempotency_key, status, created_at, confirmed_at, reservation_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (id) DO UPDATE
SET status = EXCLUDED.status, confirmed_at = EXCLUDED.confirmed_at, reservation_seq = EXCLUDED.reservation_seq
WHERE orders.status = 'failed' AND EXCLUDED.status = 'confirmed'
RETURNING (xmax = 0) AS inserted;

-- name: OrderByID :one
SELECT * FROM orders WHERE tenant_id = $1 AND id = $2;

-- name: ListUserOrders :many
SELECT * FROM orders
WHERE tenant_id = $1 AND user_id = $2
ORDER BY created_at DESC, id DESC
LIMIT $3;

-- name: ListUserOrdersAfter :many
SELECT * FROM orders
WHERE tenant_id = sqlc.arg(tenant_id) AND user_id = sqlc.arg(user_id)
  AND (created_at, id) < (sqlc.arg(after_created_at)::timestamptz, sqlc.arg(after_id)::uuid)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: ReservationHighWater :many
-- The sale's order with the highest reservation number, if any: see ReservationHighWater.
SELECT id, reservation_seq FROM orders
WHERE sale_id = sqlc.arg(sale_id) AND tenant_id = sqlc.arg(tenant_id) AND reservation_seq > 0
ORDER BY reservation_seq DESC
LIMIT 1;

-- name: ShardHighWaters :many
-- A sharded sale's order with the highest reservation number per shard (a shard's numbers are
-- its index modulo the sale's shards): see ReservationHighWater.
SELECT DISTINCT ON (reservation_seq % sqlc.arg(shards)::bigint) id, reservation_seq
FROM orders
WHERE sale_id = sqlc.arg(sale_id) AND tenant_id = sqlc.arg(tenant_id) AND reservation_seq > 0
ORDER BY reservation_seq % sqlc.arg(shards)::bigint, reservation_seq DESC;

-- name: ConfirmedOrderIDs :many
SELECT id FROM orders
WHERE tenant_id = sqlc.arg(tenant_id) AND id = ANY(sqlc.arg(ids)::uuid[]) AND status = 'confirmed';

-- name: SaleOrders :many
-- A sale's durable orders (confirmed ones hold stock; failed ones only their idempotency key):
-- what a lost inventory is restored from.
SELECT * FROM orders
WHERE tenant_id = $1 AND sale_id = $2
ORDER BY created_at, id;
