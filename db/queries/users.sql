-- name: InsertUser :exec
INSERT INTO users (id, tenant_id, email, password_hash, role, created_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: UserByEmail :one
SELECT * FROM users WHERE tenant_id = $1 AND email = $2;

-- name: UserByID :one
SELECT * FROM users WHERE tenant_id = $1 AND id = $2;
