-- +goose Up
-- The admissions a sale's waiting room gave (issue "A fair, inventory-aware waiting room"),
-- recorded by the worker's admission pass: when Redis loses the room, the pass puts them back
-- before it admits anyone again, so that no shopper is admitted twice.
CREATE TABLE IF NOT EXISTS room_admissions (
    sale_id        uuid NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    admitted_until timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sale_id, user_id)
);

-- A room may find its admission rate itself (the sale's room_admit_per_second is then its ceiling).
ALTER TABLE sales ADD COLUMN IF NOT EXISTS room_auto_rate boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE sales DROP COLUMN IF EXISTS room_auto_rate;
DROP TABLE IF EXISTS room_admissions;
