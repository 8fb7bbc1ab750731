-- Rotate a session's refresh token: the presented hash must be the current one. Anything else
-- is a rotated (stolen) token replayed, and the whole session is revoked.
--
-- KEYS[1] session hash: t (tenant id), u (user id), h (hash of the current refresh secret)
-- ARGV: presented hash, next hash, ttl (ms)
-- Returns {'OK', tenant id, user id} | {'GONE'} | {'REUSED'}
local f = redis.call('HMGET', KEYS[1], 'h', 't', 'u')
if not f[1] then
  return {'GONE'}
end
if f[1] ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'REUSED'}
end
redis.call('HSET', KEYS[1], 'h', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'OK', f[2], f[3]}
