-- Create a sale's inventory, or apply a changed stock, limit, window or price, atomically.
-- The units sold so far stay sold: a total below them is refused and nothing changes.
--
-- A sharded sale (shards above 1) has one inventory per shard, each in its own hash slot. Shard
-- 0, the head, holds the sale's total ('saletotal'); each shard holds its own part of the stock
-- ('total'), which transfers (give.lua, take.lua) move between shards. Created, each shard
-- gets its share; changed, every shard takes the new limit, window and price (the parts first,
-- the head last), and the head alone takes the change of the total: a rise adds to its
-- stock (the other shards take from it when short), a cut takes from it, and when it holds
-- fewer units than the cut the adapter moves stock to it from the others and calls again.
--
-- KEYS[1] inv (as in reserve.lua)
-- ARGV: total (the sale's), per-user limit, starts (ms), ends (ms), price (cents), currency,
--       units sold (used only when the inventory does not exist yet, and on one shard only),
--       shards (1 if not sharded), this shard, its share of the stock when created
-- Returns {'OK', remaining, sold} | {'BELOW_SOLD', sold}
--   | {'NEED', units}: the head holds fewer unsold units than the cut takes
local shards, shard = tonumber(ARGV[8] or '1'), tonumber(ARGV[9] or '0')
local existing = redis.call('HGET', KEYS[1], 'sold')
local sold = tonumber(existing or ARGV[7])
local config = {'limit', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4], 'price', ARGV[5], 'currency', ARGV[6]}

if shards == 1 then
  local total = tonumber(ARGV[1])
  if total < sold then
    return {'BELOW_SOLD', tostring(sold)}
  end
  if not existing then
    redis.call('HSET', KEYS[1], 'pending', 0)
  end
  redis.call('HSET', KEYS[1], 'total', total, 'remaining', total - sold, 'sold', sold, unpack(config))
  return {'OK', tostring(total - sold), tostring(sold)}
end

if not existing then
  local share = tonumber(ARGV[10])
  if share < sold then
    return {'BELOW_SOLD', tostring(sold)}
  end
  redis.call('HSET', KEYS[1], 'total', share, 'remaining', share - sold, 'sold', sold, 'pending', 0,
    'seq', shard, 'shards', shards, unpack(config))
  if shard == 0 then
    redis.call('HSET', KEYS[1], 'saletotal', ARGV[1])
  end
  return {'OK', tostring(share - sold), tostring(sold)}
end
redis.call('HSET', KEYS[1], unpack(config))
local cur = redis.call('HMGET', KEYS[1], 'remaining', 'saletotal')
if shard == 0 then
  local delta = tonumber(ARGV[1]) - tonumber(cur[2] or ARGV[1])
  if tonumber(cur[1]) + delta < 0 then
    return {'NEED', tostring(-delta - tonumber(cur[1]))}
  end
  if delta ~= 0 then
    redis.call('HINCRBY', KEYS[1], 'total', delta)
    cur[1] = redis.call('HINCRBY', KEYS[1], 'remaining', delta)
  end
  redis.call('HSET', KEYS[1], 'saletotal', ARGV[1])
end
return {'OK', tostring(cur[1]), tostring(sold)}
