-- name: PgClaimIdempotencyKey :one
-- Claims the key for a lease if it is free or its record expired; no row if it is in use.
INSERT INTO pg_idempotency AS i (tenant_id, user_id, key, fingerprint, done, outcome, expires_at)
VALUES (@tenant_id, @user_id, @key, @fingerprint, false, NULL, clock_timestamp() + make_interval(secs => @lease_seconds::float8))
ON CONFLICT (tenant_id, user_id, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, done = false, outcome = NULL, expires_at = EXCLUDED.expires_at
WHERE i.expires_at <= clock_timestamp()
RETURNING true AS claimed;

-- name: PgIdempotencyRecord :one
-- The live record of a key in use.
SELECT fingerprint, done, outcome FROM pg_idempotency
WHERE tenant_id = @tenant_id AND user_id = @user_id AND key = @key AND expires_at > clock_timestamp();

-- name: PgCompleteIdempotencyKey :exec
INSERT INTO pg_idempotency AS i (tenant_id, user_id, key, fingerprint, done, outcome, expires_at)
VALUES (@tenant_id, @user_id, @key, @fingerprint, true, @outcome, clock_timestamp() + make_interval(secs => @ttl_seconds::float8))
ON CONFLICT (tenant_id, user_id, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, done = true, outcome = EXCLUDED.outcome, expires_at = EXCLUDED.expires_at;

-- name: PgForgetIdempotencyKey :exec
DELETE FROM pg_idempotency WHERE tenant_id = @tenant_id AND user_id = @user_id AND key = @key;
