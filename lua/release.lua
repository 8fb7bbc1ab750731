-- Give a pending reservation's stock and the buyer's allowance back; mark it failed.
--
-- KEYS[1] inv, KEYS[2] buyers, KEYS[3] res, KEYS[4] awaited (as in reserve.lua)
-- ARGV: order id
-- Returns {'OK', reservation} | {'NOOP', reservation} (not pending) | {'MISSING'}
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then
  return {'MISSING'}
end
local r = cjson.decode(rec)
if r.s ~= 'pending' then
  return {'NOOP', rec}
end
redis.call('HINCRBY', KEYS[1], 'remaining', r.q)
redis.call('HINCRBY', KEYS[1], 'sold', -r.q)
redis.call('HINCRBY', KEYS[1], 'pending', -r.q)
if redis.call('HINCRBY', KEYS[2], r.u, -r.q) <= 0 then
  redis.call('HDEL', KEYS[2], r.u)
end
r.s = 'failed'
rec = cjson.encode(r)
redis.call('HSET', KEYS[3], ARGV[1], rec)
redis.call('ZREM', KEYS[4], ARGV[1])
return {'OK', rec}
