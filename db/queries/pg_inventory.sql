-- name: LockPgInventory :one
-- The row lock of the sale, for the row-locking inventory (INVENTORY_BACKEND=postgres): every
-- transaction that changes a sale takes it first and holds it to the end, so the changes to one
-- sale run one at a time.
SELECT * FROM pg_inventory WHERE tenant_id = $1 AND sale_id = $2 FOR UPDATE;

-- name: InsertPgInventory :execrows
-- Creates the inventory; 0 rows if a concurrent SyncSale created it first.
INSERT INTO pg_inventory (tenant_id, sale_id, total, remaining, sold, pending, per_user_limit,
                          starts_at, ends_at, price_cents, currency)
VALUES (@tenant_id, @sale_id, @total, @remaining, @sold, 0, @per_user_limit,
        @starts_at, @ends_at, @price_cents, @currency)
ON CONFLICT (tenant_id, sale_id) DO NOTHING;

-- name: UpdatePgInventory :exec
-- Applies a changed sale (remaining is total minus the units sold, which stay sold); the
-- pending count is untouched.
UPDATE pg_inventory
SET total = @total, remaining = @remaining, per_user_limit = @per_user_limit,
    starts_at = @starts_at, ends_at = @ends_at, price_cents = @price_cents, currency = @currency
WHERE tenant_id = @tenant_id AND sale_id = @sale_id;

-- name: PgInventories :many
SELECT sale_id, total, remaining, sold, pending FROM pg_inventory
WHERE tenant_id = @tenant_id AND sale_id = ANY(@sale_ids::uuid[]);

-- name: PgReserveCheck :one
-- What Reserve decides on once it holds the lock: the clock of PostgreSQL (milliseconds, read
-- now, not when the transaction began, like TIME in reserve.lua), the units the user holds, and the
-- order a replay of the (user, key) pair already made.
SELECT date_trunc('milliseconds', clock_timestamp())::timestamptz AS now,
       COALESCE((SELECT b.units FROM pg_buyers b
                 WHERE b.tenant_id = @tenant_id AND b.sale_id = @sale_id AND b.user_id = @user_id), 0)::integer AS bought,
       ARRAY(SELECT r.order_id FROM pg_reservations r
             WHERE r.tenant_id = @tenant_id AND r.sale_id = @sale_id AND r.user_id = @user_id
               AND r.idempotency_key = @idempotency_key)::uuid[] AS prior_order_ids;

-- name: PgRereserveCheck :one
-- PgReserveCheck for a failed reservation taken again.
SELECT date_trunc('milliseconds', clock_timestamp())::timestamptz AS now,
       COALESCE((SELECT b.units FROM pg_buyers b
                 WHERE b.tenant_id = @tenant_id AND b.sale_id = @sale_id AND b.user_id = @user_id), 0)::integer AS bought;

-- name: PgReserve :one
-- Takes the stock for a new reservation and records it, awaited from its creation.
WITH inv AS (
    UPDATE pg_inventory i
    SET remaining = i.remaining - @quantity::integer, sold = i.sold + @quantity::integer,
        pending = i.pending + @quantity::integer
    WHERE i.tenant_id = @tenant_id AND i.sale_id = @sale_id
    RETURNING remaining
), buyer AS (
    INSERT INTO pg_buyers (tenant_id, sale_id, user_id, units)
    VALUES (@tenant_id, @sale_id, @user_id, @quantity::integer)
    ON CONFLICT (tenant_id, sale_id, user_id) DO UPDATE SET units = pg_buyers.units + EXCLUDED.units
), res AS (
    INSERT INTO pg_reservations (tenant_id, sale_id, order_id, user_id, quantity, idempotency_key,
                                 unit_price_cents, currency, created_at, status, awaited_since, node)
    VALUES (@tenant_id, @sale_id, @order_id, @user_id, @quantity::integer, @idempotency_key,
            @unit_price_cents, @currency, @created_at, 'pending', @created_at, @node)
)
SELECT remaining FROM inv;

-- name: PgRereserve :exec
-- Takes the stock of a failed reservation again; it is pending and awaited from now on.
WITH inv AS (
    UPDATE pg_inventory i
    SET remaining = i.remaining - @quantity::integer, sold = i.sold + @quantity::integer,
        pending = i.pending + @quantity::integer
    WHERE i.tenant_id = @tenant_id AND i.sale_id = @sale_id
), buyer AS (
    INSERT INTO pg_buyers (tenant_id, sale_id, user_id, units)
    VALUES (@tenant_id, @sale_id, @user_id, @quantity::integer)
    ON CONFLICT (tenant_id, sale_id, user_id) DO UPDATE SET units = pg_buyers.units + EXCLUDED.units
)
UPDATE pg_reservations r
SET status = 'pending', awaited_since = @awaited_since::timestamptz
WHERE r.tenant_id = @tenant_id AND r.sale_id = @sale_id AND r.order_id = @order_id;

-- name: PgRelease :one
-- Gives the stock of a pending reservation and the allowance of its buyer back, marks it failed;
-- released is 0 if it was not pending.
WITH r AS (
    UPDATE pg_reservations
    SET status = 'failed', awaited_since = NULL
    WHERE pg_reservations.tenant_id = @tenant_id AND pg_reservations.sale_id = @sale_id
      AND pg_reservations.order_id = @order_id AND pg_reservations.status = 'pending'
    RETURNING user_id, quantity
), inv AS (
    UPDATE pg_inventory i
    SET remaining = i.remaining + r.quantity, sold = i.sold - r.quantity, pending = i.pending - r.quantity
    FROM r
    WHERE i.tenant_id = @tenant_id AND i.sale_id = @sale_id
), buyer AS (
    UPDATE pg_buyers b
    SET units = b.units - r.quantity
    FROM r
    WHERE b.tenant_id = @tenant_id AND b.sale_id = @sale_id AND b.user_id = r.user_id
)
SELECT count(*) AS released FROM r;

-- name: PgConfirm :exec
-- Records that the order of a pending reservation is durable: no longer pending nor awaited.
WITH r AS (
    UPDATE pg_reservations
    SET status = 'confirmed', awaited_since = NULL
    WHERE pg_reservations.tenant_id = @tenant_id AND pg_reservations.sale_id = @sale_id
      AND pg_reservations.order_id = @order_id AND pg_reservations.status = 'pending'
    RETURNING quantity
)
UPDATE pg_inventory i
SET pending = i.pending - r.quantity
FROM r
WHERE i.tenant_id = @tenant_id AND i.sale_id = @sale_id;

-- name: PgReservation :one
SELECT * FROM pg_reservations WHERE tenant_id = @tenant_id AND sale_id = @sale_id AND order_id = @order_id;

-- name: PgFindReservation :one
-- The order among the reservations of several sales; the first sale listed wins, as in Redis.
SELECT * FROM pg_reservations
WHERE tenant_id = @tenant_id AND sale_id = ANY(@sale_ids::uuid[]) AND order_id = @order_id
ORDER BY array_position(@sale_ids::uuid[], sale_id)
LIMIT 1;

-- name: PgAwaitedReservations :many
-- Pending reservations awaited since before, oldest first (ties by order id, as in a Redis
-- sorted set); no limit when max_rows is NULL.
SELECT * FROM pg_reservations
WHERE tenant_id = @tenant_id AND sale_id = @sale_id
  AND awaited_since IS NOT NULL AND awaited_since <= @before::timestamptz
ORDER BY awaited_since, order_id
LIMIT sqlc.narg('max_rows')::integer;

-- name: PgRestoreInventory :execrows
-- Recreates a lost inventory, fenced; 0 rows if the sale has one.
INSERT INTO pg_inventory (tenant_id, sale_id, total, remaining, sold, pending, per_user_limit,
                          starts_at, ends_at, price_cents, currency, fence)
VALUES (@tenant_id, @sale_id, @total, @remaining, @sold, 0, @per_user_limit,
        @starts_at, @ends_at, @price_cents, @currency, sqlc.narg(fence))
ON CONFLICT (tenant_id, sale_id) DO NOTHING;

-- name: PgRestoreOrder :exec
-- A restored inventory's durable order: its reservation (confirmed or failed) and the units it
-- holds for its buyer (0 for a failed one).
WITH buyer AS (
    INSERT INTO pg_buyers (tenant_id, sale_id, user_id, units)
    VALUES (@tenant_id, @sale_id, @user_id, @units::integer)
    ON CONFLICT (tenant_id, sale_id, user_id) DO UPDATE SET units = pg_buyers.units + EXCLUDED.units
)
INSERT INTO pg_reservations (tenant_id, sale_id, order_id, user_id, quantity, idempotency_key,
                             unit_price_cents, currency, created_at, status, awaited_since)
VALUES (@tenant_id, @sale_id, @order_id, @user_id, @quantity::integer, @idempotency_key,
        @unit_price_cents, @currency, @created_at, @status, NULL);

-- name: PgFenceInventory :exec
-- Refuses purchases until fence, or a later fence already set.
UPDATE pg_inventory SET fence = GREATEST(COALESCE(fence, @fence::timestamptz), @fence::timestamptz)
WHERE tenant_id = @tenant_id AND sale_id = @sale_id;
