-- +goose Up
-- A restored inventory of the row-locking baseline refuses purchases until fence (the Redis
-- inventory's 'fence' field): see ports.InventoryStore.RestoreSale.
ALTER TABLE pg_inventory ADD COLUMN fence timestamptz;

-- +goose Down
ALTER TABLE pg_inventory DROP COLUMN fence;
