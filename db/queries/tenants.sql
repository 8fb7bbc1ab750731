-- name: InsertTenantIfAbsent :exec
INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)
ON CONFLICT (slug) DO NOTHING;

-- name: TenantBySlug :one
SELECT * FROM tenants WHERE slug = $1;
