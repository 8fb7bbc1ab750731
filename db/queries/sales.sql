-- name: InsertSale :exec
INSERT INTO sales (id, tenant_id, name, price_cents, currency, total_stock, per_user_limit,
                   starts_at, ends_at, created_at, updated_at, shards,
                   room_enabled, room_admit_per_second, room_admission_ttl_seconds, room_auto_rate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16);

-- name: SaleByID :one
SELECT * FROM sales WHERE tenant_id = $1 AND id = $2;

-- name: SaleByIDForUpdate :one
SELECT * FROM sales WHERE tenant_id = $1 AND id = $2 FOR UPDATE;

-- name: UpdateSale :exec
UPDATE sales
SET name = $3, price_cents = $4, currency = $5, total_stock = $6, per_user_limit = $7,
    starts_at = $8, ends_at = $9, updated_at = $10,
    room_enabled = $11, room_admit_per_second = $12, room_admission_ttl_seconds = $13, room_auto_rate = $14,
    status = CASE WHEN $9 > now() THEN 'active' ELSE status END
WHERE tenant_id = $1 AND id = $2;

-- name: ListActiveSales :many
-- Sales not yet ended, through the partial index on active sales.
SELECT * FROM sales
WHERE tenant_id = $1 AND status = 'active' AND ends_at > now()
ORDER BY starts_at DESC
LIMIT $2;

-- name: ListEndedSales :many
SELECT * FROM sales
WHERE tenant_id = $1 AND ends_at <= now()
ORDER BY ends_at DESC
LIMIT $2;

-- name: ListSales :many
SELECT * FROM sales
WHERE tenant_id = $1
ORDER BY created_at DESC
LIMIT $2;

-- name: LiveSales :many
SELECT tenant_id, id FROM sales WHERE status = 'active' OR ends_at > $1;

-- name: TenantLiveSaleIDs :many
SELECT id FROM sales WHERE tenant_id = $1 AND (status = 'active' OR ends_at > $2);

-- name: CloseSales :execrows
UPDATE sales SET status = 'closed' WHERE status = 'active' AND ends_at < $1;

-- name: SoldUnits :one
SELECT COALESCE(SUM(quantity), 0)::integer AS sold
FROM orders WHERE tenant_id = $1 AND sale_id = $2 AND status = 'confirmed';

-- name: LiveWaitingRoomSales :many
-- Sales with a waiting room that have not ended (since: a little before now), for the admit pass.
SELECT * FROM sales WHERE room_enabled AND ends_at > $1;
