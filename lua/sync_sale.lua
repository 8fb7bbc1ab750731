-- Create a sale's inventory, or apply a changed stock, limit, window or price, atomically.
-- The units sold so far stay sold: a total below them is refused and nothing changes.
--
-- KEYS[1] inv (as in reserve.lua)
-- ARGV: total, per-user limit, starts (ms), ends (ms), price (cents), currency,
--       units sold (used only when the inventory does not exist yet)
-- Returns {'OK', remaining, sold} | {'BELOW_SOLD', sold}
local existing = redis.call('HGET', KEYS[1], 'sold')
local sold = tonumber(existing or ARGV[7])
local total = tonumber(ARGV[1])
if total < sold then
  return {'BELOW_SOLD', tostring(sold)}
end
if not existing then
  redis.call('HSET', KEYS[1], 'pending', 0)
end
redis.call('HSET', KEYS[1], 'total', total, 'remaining', total - sold, 'sold', sold,
  'limit', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4], 'price', ARGV[5], 'currency', ARGV[6])
return {'OK', tostring(total - sold), tostring(sold)}
