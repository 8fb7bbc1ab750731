-- +goose Up
-- A restored inventory of the row-locking baseline refuses purchases until fence (the Redis
-- inventory's 'fence' field): see ports.InventoryStore.RestoreSale.
ALTER TABLE pg_inventory ADD COLUMN fence timestamptz;
-- The API node that accepted a reservation and queues it (the Redis record's 'd').
ALTER TABLE pg_reservations ADD COLUMN node text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE pg_reservations DROP COLUMN node;
ALTER TABLE pg_inventory DROP COLUMN fence;
