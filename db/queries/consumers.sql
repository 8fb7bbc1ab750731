-- name: InsertProcessedEvent :execrows
-- 0 rows: the consumer has applied this event before.
INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING;

-- name: EventProcessed :one
SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2) AS processed;

-- name: AddSaleStats :exec
INSERT INTO sale_stats (sale_id, tenant_id, orders, units, revenue_cents, currency, first_order_at, last_order_at)
VALUES (sqlc.arg(sale_id), sqlc.arg(tenant_id), 1, sqlc.arg(units), sqlc.arg(revenue_cents), sqlc.arg(currency),
        sqlc.arg(ordered_at), sqlc.arg(ordered_at))
ON CONFLICT (sale_id) DO UPDATE
SET orders = sale_stats.orders + 1,
    units = sale_stats.units + EXCLUDED.units,
    revenue_cents = sale_stats.revenue_cents + EXCLUDED.revenue_cents,
    first_order_at = LEAST(sale_stats.first_order_at, EXCLUDED.first_order_at),
    last_order_at = GREATEST(sale_stats.last_order_at, EXCLUDED.last_order_at),
    updated_at = now();

-- name: SaleStats :one
SELECT * FROM sale_stats WHERE tenant_id = $1 AND sale_id = $2;

-- name: AddSaleCounter :one
INSERT INTO sale_counters (sale_id, tenant_id, sold) VALUES ($1, $2, $3)
ON CONFLICT (sale_id) DO UPDATE SET sold = sale_counters.sold + EXCLUDED.sold
RETURNING sold;

-- name: RecordSaleDrift :exec
UPDATE sale_counters SET drift = $3, checked_at = now() WHERE tenant_id = $1 AND sale_id = $2;

-- name: SaleCounter :one
SELECT * FROM sale_counters WHERE tenant_id = $1 AND sale_id = $2;
