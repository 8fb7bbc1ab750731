-- Gives back an admission a purchase spent just before its reservation (room_use.lua, on a Redis
-- Cluster when the buyer's shard is not in the room's slot) when the reservation then took
-- nothing: the buyer keeps it for the next try, as on a single Redis, where the spend is in the
-- reservation's own step.
--
-- KEYS[1] adm, KEYS[2] live, KEYS[3] held (room_admit.lua's)
-- ARGV: user, the idempotency key that spent it
-- Only an admission spent by that key is given back: live again until its end, or expired past it.
-- Returns 1 if given back, 0 otherwise.
local adm, live, held = KEYS[1], KEYS[2], KEYS[3]
local user, key = ARGV[1], ARGV[2]
local a = redis.call('HGET', adm, user)
if not a or string.sub(a, 1, 2) ~= 'U:' then
  return 0
end
local untl = string.match(a, '^U:(%d+):')
if not untl or string.sub(a, string.len(untl) + 4) ~= key then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', held, user)
if now < tonumber(untl) then
  redis.call('HSET', adm, user, 'A:' .. untl)
  redis.call('ZADD', live, untl, user)
else
  redis.call('HSET', adm, user, 'X:' .. untl)
end
return 1
