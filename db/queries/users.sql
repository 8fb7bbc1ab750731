-- name: InsertUser :exec
INSERT INTO users (id, tenant_id, email, password_hash, role, created_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: UserByEmail :one
SELECT * FROM users WHERE tenant_id = $1 AND email = $2;

-- name: UserByID :one
SELECT * FROM users WHERE tenant_id = $1 AND id = $2;

-- name: ReplacePasswordHash :execrows
UPDATE users SET password_hash = sqlc.arg(new_hash)
WHERE tenant_id = sqlc.arg(tenant_id) AND id = sqlc.arg(id) AND password_hash = sqlc.arg(old_hash);
