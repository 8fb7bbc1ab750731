-- Take a failed reservation's stock again (a dead letter retried by an admin); the sale window
-- is not checked: the purchase was accepted inside it.
--
-- KEYS[1] inv, KEYS[2] buyers, KEYS[3] res, KEYS[4] awaited (as in reserve.lua)
-- ARGV: order id
-- Returns {'OK', reservation} (pending again, or still pending) | {'MISSING'} | {'NOT_RETRYABLE'}
--   | {'NO_SALE'} | {'SOLD_OUT'} | {'LIMIT', units allowed} | {'INSUFFICIENT', units left}
--   | {'FENCED'} (the inventory rolled back and waits for its rebuild)
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then
  return {'MISSING'}
end
local r = cjson.decode(rec)
if r.s == 'pending' then
  return {'OK', rec}
end
if r.s ~= 'failed' then
  return {'NOT_RETRYABLE'}
end
local f = redis.call('HMGET', KEYS[1], 'remaining', 'limit', 'rolledback', 'shards', 'rebuilding')
if not f[1] then
  return {'NO_SALE'}
end
if f[3] or f[5] then
  return {'FENCED'}
end
local remaining, limit = tonumber(f[1]), tonumber(f[2])
if remaining <= 0 then
  return {'SOLD_OUT'}
end
local bought = tonumber(redis.call('HGET', KEYS[2], r.u) or '0')
if bought + r.q > limit then
  return {'LIMIT', tostring(limit - bought)}
end
if remaining < r.q then
  return {'INSUFFICIENT', tostring(remaining)}
end
redis.call('HINCRBY', KEYS[1], 'remaining', -r.q)
redis.call('HINCRBY', KEYS[1], 'sold', r.q)
redis.call('HINCRBY', KEYS[1], 'pending', r.q)
redis.call('HINCRBY', KEYS[2], r.u, r.q)
r.s = 'pending'
r.n = redis.call('HINCRBY', KEYS[1], 'seq', tonumber(f[4] or '1'))
rec = cjson.encode(r)
redis.call('HSET', KEYS[3], ARGV[1], rec)
local t = redis.call('TIME')
redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return {'OK', rec}
