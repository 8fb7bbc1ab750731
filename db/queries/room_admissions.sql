-- name: RecordRoomAdmissions :exec
-- The admissions one pass gave; one per shopper and sale (a second is never given).
INSERT INTO room_admissions (sale_id, tenant_id, user_id, admitted_until)
SELECT sqlc.arg(sale_id)::uuid, sqlc.arg(tenant_id)::uuid, unnest(sqlc.arg(user_ids)::uuid[]), unnest(sqlc.arg(untils)::timestamptz[])
ON CONFLICT (sale_id, user_id) DO NOTHING;

-- name: RoomAdmissions :many
SELECT user_id, admitted_until FROM room_admissions WHERE tenant_id = $1 AND sale_id = $2 ORDER BY user_id;
