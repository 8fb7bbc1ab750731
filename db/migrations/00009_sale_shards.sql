-- +goose Up
-- How many stock shards the sale's inventory is split into in Redis (issue "Outgrow one
-- machine"): set at creation, never changed.
ALTER TABLE sales ADD COLUMN IF NOT EXISTS shards smallint NOT NULL DEFAULT 1
  CHECK (shards BETWEEN 1 AND 64);

-- +goose Down
ALTER TABLE sales DROP COLUMN IF EXISTS shards;
