-- +goose NO TRANSACTION
-- +goose Up
-- The number the inventory store gave the order's reservation (reserve.lua's per-sale 'seq'),
-- mirrored by the worker: the highest per sale is the store's high-water mark, and a store
-- found below it has rolled back (see ports.InventoryStore.RestoreSale). 0: none (orders of
-- the PostgreSQL baseline inventory, or written before this column).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS reservation_seq bigint NOT NULL DEFAULT 0;
-- The high-water mark of a live sale is read every second: one index probe per sale.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_sale_seq_idx ON orders (sale_id, reservation_seq DESC);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_sale_seq_idx;
ALTER TABLE orders DROP COLUMN IF EXISTS reservation_seq;
