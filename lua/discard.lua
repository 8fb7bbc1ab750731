-- Undo a reservation as if it never happened: made in the same round trip as an idempotency
-- claim that found the key already used, so the request is answered from the key's record and
-- must leave nothing behind. Stock, the buyer's allowance, the pending count, the reservation,
-- its key and its awaited entry all go.
--
-- KEYS[1] inv, KEYS[2] buyers, KEYS[3] keys, KEYS[4] res, KEYS[5] awaited (as in reserve.lua)
-- ARGV: order id
-- Returns 1 if undone, 0 if there was nothing pending to undo.
local rec = redis.call('HGET', KEYS[4], ARGV[1])
if not rec then
  return 0
end
local r = cjson.decode(rec)
if r.s ~= 'pending' then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'remaining', r.q)
redis.call('HINCRBY', KEYS[1], 'sold', -r.q)
redis.call('HINCRBY', KEYS[1], 'pending', -r.q)
if redis.call('HINCRBY', KEYS[2], r.u, -r.q) <= 0 then
  redis.call('HDEL', KEYS[2], r.u)
end
if redis.call('HGET', KEYS[3], r.u .. ':' .. r.k) == ARGV[1] then
  redis.call('HDEL', KEYS[3], r.u .. ':' .. r.k)
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
