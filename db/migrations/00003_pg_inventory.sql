-- +goose Up
-- The row-locking inventory (INVENTORY_BACKEND=postgres): the PostgreSQL baseline the Redis
-- design (lua/*.lua) is measured against. It keeps exactly what the scripts keep, one table per
-- Redis key of a sale, and every change to a sale takes its pg_inventory row lock first
-- (SELECT ... FOR UPDATE): the purchases of one sale run one at a time, which is the point.
-- Like the Redis keys, these rows are scoped by (tenant, sale) and hold whatever SyncSale was
-- given: no foreign keys to sales.

-- One row per sale: the Redis inventory hash.
CREATE TABLE pg_inventory (
    tenant_id      uuid NOT NULL,
    sale_id        uuid NOT NULL,
    total          integer NOT NULL,
    remaining      integer NOT NULL,
    sold           integer NOT NULL,     -- every unit taken
    pending        integer NOT NULL,     -- the units of reservations not yet durable
    per_user_limit integer NOT NULL,
    starts_at      timestamptz NOT NULL, -- milliseconds, as the scripts compare them
    ends_at        timestamptz NOT NULL,
    price_cents    bigint NOT NULL,
    currency       text NOT NULL,
    PRIMARY KEY (tenant_id, sale_id),
    CHECK (remaining >= 0 AND sold >= 0 AND pending >= 0 AND remaining + sold = total)
);

-- Units each user holds in a sale (the buyers hash), for the per-user limit.
CREATE TABLE pg_buyers (
    tenant_id uuid NOT NULL,
    sale_id   uuid NOT NULL,
    user_id   uuid NOT NULL,
    units     integer NOT NULL CHECK (units >= 0),
    PRIMARY KEY (tenant_id, sale_id, user_id)
);

-- Reservations (the res hash); the unique key is the keys hash (idempotency per user and key
-- within the sale) and awaited_since the awaited sorted set.
CREATE TABLE pg_reservations (
    tenant_id        uuid NOT NULL,
    sale_id          uuid NOT NULL,
    order_id         uuid NOT NULL,
    user_id          uuid NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    idempotency_key  text NOT NULL,
    unit_price_cents bigint NOT NULL,
    currency         text NOT NULL,
    created_at       timestamptz NOT NULL, -- milliseconds, PostgreSQL's clock
    status           text NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
    -- when the order started waiting for its durable write (milliseconds); NULL unless pending.
    awaited_since    timestamptz,
    PRIMARY KEY (tenant_id, sale_id, order_id),
    UNIQUE (tenant_id, sale_id, user_id, idempotency_key),
    CHECK ((status = 'pending') = (awaited_since IS NOT NULL))
);

-- The reconciler's sweep: a sale's awaited reservations, oldest first.
CREATE INDEX pg_reservations_awaited_idx ON pg_reservations (tenant_id, sale_id, awaited_since, order_id)
    WHERE awaited_since IS NOT NULL;

-- +goose Down
DROP TABLE pg_reservations;
DROP TABLE pg_buyers;
DROP TABLE pg_inventory;
