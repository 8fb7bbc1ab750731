-- Recreate a sale's inventory the store lost, from the sale and its durable orders, unless it
-- exists (another node restored it first): the units of confirmed orders are sold, each buyer
-- holds theirs, each (user, idempotency key) names its order, confirmed or failed, and each
-- order's reservation is recorded with its status (a failed one holds no stock). Purchases are fenced until ARGV[7] (reserve.lua answers FENCED), so the
-- orders accepted before the loss and still on their way take their stock first (adopt.lua).
--
-- KEYS[1] inv, KEYS[2] buyers, KEYS[3] keys, KEYS[4] res (as in reserve.lua)
-- ARGV: total, per-user limit, starts (ms), ends (ms), price (cents), currency, fence (unix ms),
--       then 8 per order: order id, user id, quantity, idempotency key, price, currency, created (ms),
--       status (confirmed or failed)
-- Returns {'OK', remaining, sold} | {'EXISTS'} | {'BELOW_SOLD', sold}
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'EXISTS'}
end
local total = tonumber(ARGV[1])
local sold = 0
for i = 8, #ARGV, 8 do
  if ARGV[i + 7] == 'confirmed' then
    sold = sold + tonumber(ARGV[i + 2])
  end
end
if total < sold then
  return {'BELOW_SOLD', tostring(sold)}
end
for i = 8, #ARGV, 8 do
  local order_id, user_id, qty, idem, status = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 7]
  if status == 'confirmed' then
    redis.call('HINCRBY', KEYS[2], user_id, qty)
  end
  redis.call('HSET', KEYS[3], user_id .. ':' .. idem, order_id)
  redis.call('HSET', KEYS[4], order_id, cjson.encode({o = order_id, u = user_id, q = qty, k = idem,
    p = ARGV[i + 4], c = ARGV[i + 5], t = ARGV[i + 6], s = status}))
end
redis.call('HSET', KEYS[1], 'total', total, 'remaining', total - sold, 'sold', sold, 'pending', 0,
  'limit', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4], 'price', ARGV[5], 'currency', ARGV[6], 'fence', ARGV[7])
return {'OK', tostring(total - sold), tostring(sold)}
