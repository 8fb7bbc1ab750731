-- +goose Up
CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    email         text NOT NULL CHECK (email = lower(email)),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('shopper', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);

CREATE TABLE sales (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    name           text NOT NULL,
    price_cents    bigint NOT NULL CHECK (price_cents >= 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_stock    integer NOT NULL CHECK (total_stock > 0),
    per_user_limit integer NOT NULL CHECK (per_user_limit > 0),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    -- open until the sale has ended and its orders are settled; only open sales are hot.
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);

-- The active-sale lookup is the only hot path over sales: index just those rows.
CREATE INDEX sales_active_idx ON sales (tenant_id, starts_at DESC) WHERE status = 'active';
CREATE INDEX sales_tenant_created_idx ON sales (tenant_id, created_at DESC);

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    sale_id          uuid NOT NULL REFERENCES sales (id),
    user_id          uuid NOT NULL REFERENCES users (id),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    amount_cents     bigint NOT NULL CHECK (amount_cents >= 0),
    currency         text NOT NULL,
    idempotency_key  text NOT NULL,
    status           text NOT NULL CHECK (status IN ('confirmed', 'failed')),
    created_at       timestamptz NOT NULL,
    confirmed_at     timestamptz,
    UNIQUE (user_id, idempotency_key)
);

-- Order history, newest first, on every dashboard load; id breaks ties for keyset paging.
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_sale_idx ON orders (sale_id) INCLUDE (quantity, status);

-- +goose Down
DROP TABLE orders;
DROP TABLE sales;
DROP TABLE users;
DROP TABLE tenants;
