-- Rotate a session's refresh token. The presented hash must be the current one. A hash that
-- was current once (a rotated token, replayed: it was stolen, or the client is confused) revokes
-- the whole session. Any other hash is just wrong: refused, and the session left alone, so
-- knowing a session id (it is in every access token) is not enough to end someone's session.
--
-- KEYS[1] session hash: t (tenant id), u (user id), h (hash of the current refresh secret)
-- KEYS[2] set of the hashes used before (same {session id} hash tag)
-- ARGV: presented hash, next hash, ttl (ms)
-- Returns {'OK', tenant id, user id} | {'GONE'} | {'REUSED'} | {'INVALID'}
local f = redis.call('HMGET', KEYS[1], 'h', 't', 'u')
if not f[1] then
  return {'GONE'}
end
if f[1] ~= ARGV[1] then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
    redis.call('DEL', KEYS[1], KEYS[2])
    return {'REUSED'}
  end
  return {'INVALID'}
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'h', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'OK', f[2], f[3]}
