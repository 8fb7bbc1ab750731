-- +goose Up
-- Idempotency keys of the row-locking baseline (INVENTORY_BACKEND=postgres), so that a purchase
-- claims its key and reserves in one transaction, as the Redis design does in one round trip.
-- A row is a claim while done is false (a lease: expires_at) and an answer once done (kept for
-- the replay TTL). Expired rows are taken over by the next claim of the same key.
CREATE TABLE pg_idempotency (
    tenant_id   uuid NOT NULL,
    user_id     uuid NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    done        boolean NOT NULL DEFAULT false,
    outcome     jsonb,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, key)
);

-- +goose Down
DROP TABLE pg_idempotency;
