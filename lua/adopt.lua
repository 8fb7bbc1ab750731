-- Take the stock of an accepted order whose reservation the store lost (Redis restarted empty
-- or rolled back, and the order reached the worker anyway). Like rereserve.lua: the stock and
-- the per-user limit are checked, not the window (the purchase was accepted inside it), nor a
-- restore's fence (orders accepted before the loss are what the fence waits for).
--
-- KEYS[1] inv, KEYS[2] buyers, KEYS[3] keys, KEYS[4] res, KEYS[5] awaited (as in reserve.lua)
-- ARGV: order id, user id, quantity, idempotency key, price, currency, created (unix ms)
-- Returns {'OK', reservation} (taken now) | {'HAS', reservation} (the store has it) | {'NO_SALE'}
--   | {'SOLD_OUT'} | {'LIMIT', units allowed} | {'INSUFFICIENT', units left}
--   | {'FENCED'} (the inventory rolled back and waits for its rebuild: its stock is not to be trusted)
local inv, buyers, keys, res, awaited = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local order_id, user_id, qty, idem = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local rec = redis.call('HGET', res, order_id)
if rec then
  return {'HAS', rec}
end
local f = redis.call('HMGET', inv, 'remaining', 'limit', 'rolledback', 'shards', 'rebuilding')
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
local bought = tonumber(redis.call('HGET', buyers, user_id) or '0')
if bought + qty > limit then
  return {'LIMIT', tostring(limit - bought)}
end
if remaining < qty then
  return {'INSUFFICIENT', tostring(remaining)}
end
redis.call('HINCRBY', inv, 'remaining', -qty)
local seq = redis.call('HINCRBY', inv, 'seq', tonumber(f[4] or '1'))
redis.call('HINCRBY', inv, 'sold', qty)
redis.call('HINCRBY', inv, 'pending', qty)
redis.call('HINCRBY', buyers, user_id, qty)
redis.call('HSET', keys, user_id .. ':' .. idem, order_id)
rec = cjson.encode({o = order_id, u = user_id, q = qty, k = idem, p = ARGV[5], c = ARGV[6], t = ARGV[7], s = 'pending', n = seq})
redis.call('HSET', res, order_id, rec)
local t = redis.call('TIME')
redis.call('ZADD', awaited, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), order_id)
return {'OK', rec}
