-- Recreate a sale's inventory the store lost or rolled back, from the sale and its durable orders
-- (PostgreSQL), unless the store's is current: it exists, is not marked 'rolledback' (see
-- reserve.lua), its reservation number 'seq' is not below the high-water mark (the highest
-- number PostgreSQL's orders carry) and it has that order's reservation (numbers given after a
-- rollback may reach the mark again). Another node may have rebuilt it first: then it is current.
--
-- Rebuilt: the units of confirmed orders are sold, each buyer holds theirs, each (user,
-- idempotency key) names its order, confirmed or failed, and each order's reservation is recorded
-- with its status (a failed one holds no stock). Pending reservations the store still holds and
-- the orders lack (accepted, still on their way to the worker) keep their stock, oldest first,
-- as far as the stock goes; newer ones beyond it were sold twice by the rolled-back inventory:
-- they are marked failed and returned. 'seq' jumps above any number the store gave before, and
-- the inventory takes a new generation ('gen'), so that API nodes' floors (reserve.lua) taken
-- before the rebuild no longer count. Purchases are fenced until ARGV[7]
-- (reserve.lua answers FENCED), so that orders accepted before the loss and still on their way
-- take their stock first (adopt.lua).
--
-- A sharded sale is rebuilt whole, one shard at a time (the adapter marks every shard
-- 'rebuilding' first, and clears the marks when all are done), and always (no 'CURRENT'): each
-- shard with the orders of its own buyers, 'total' bounding the units it may hold; a part
-- (shard 1 and up) keeps no stock of its own ('total' becomes what it sold and holds), the
-- head (shard 0, rebuilt last) gets the rest of the sale's stock.
--
-- KEYS[1] inv, KEYS[2] buyers, KEYS[3] keys, KEYS[4] res, KEYS[5] awaited (as in reserve.lua)
-- ARGV: total, per-user limit, starts (ms), ends (ms), price (cents), currency, fence (unix ms),
--       high-water mark and its order id ('' if none), the new generation, shards (1 if not
--       sharded), this shard, the sale's total (for the head), the pending reservations to drop
--       (comma-separated order ids: a sharded sale's are chosen over all its shards, oldest
--       first), then 8 per order:
--       order id, user id, quantity, idempotency key, price, currency, created (ms), status
--       (confirmed or failed)
-- Returns {'OK', remaining, sold, dropped order id...} | {'CURRENT'} | {'BELOW_SOLD', sold}
--   (sold: what the inventory sold and holds)
local inv, buyers, keys, res, awaited = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local total, high, high_id = tonumber(ARGV[1]), tonumber(ARGV[8]), ARGV[9]
local shards, shard = tonumber(ARGV[11]), tonumber(ARGV[12])
local first = 15 -- the first order's ARGV
local drop = {}
for id in string.gmatch(ARGV[14], '[^,]+') do
  drop[id] = true
end

local cur = redis.call('HMGET', inv, 'total', 'seq', 'rolledback')
local seq = tonumber(cur[2] or '0')
if shards == 1 and cur[1] and not cur[3] and seq >= high and
    (high_id == '' or redis.call('HEXISTS', res, high_id) == 1) then
  return {'CURRENT'}
end

local durable, sold = {}, 0
for i = first, #ARGV, 8 do
  durable[ARGV[i]] = true
  if ARGV[i + 7] == 'confirmed' then
    sold = sold + tonumber(ARGV[i + 2])
  end
end
if total < sold then
  return {'BELOW_SOLD', tostring(sold)}
end

-- Pending reservations PostgreSQL does not have yet, oldest first.
local pending = {}
local all = redis.call('HGETALL', res)
for i = 1, #all, 2 do
  if not durable[all[i]] then
    local r = cjson.decode(all[i + 1])
    if r.s == 'pending' then
      pending[#pending + 1] = r
    end
  end
end
table.sort(pending, function(a, b)
  local ta, tb = tonumber(a.t), tonumber(b.t)
  if ta ~= tb then
    return ta < tb
  end
  return a.o < b.o
end)

redis.call('DEL', buyers)
local held, reply = 0, {'OK', '', ''}
for _, r in ipairs(pending) do
  if not drop[r.o] and sold + r.q <= total then
    sold, held = sold + r.q, held + r.q
    redis.call('HINCRBY', buyers, r.u, r.q)
  else
    r.s = 'failed'
    redis.call('HSET', res, r.o, cjson.encode(r))
    redis.call('ZREM', awaited, r.o)
    reply[#reply + 1] = r.o
  end
end
for i = first, #ARGV, 8 do
  local order_id, user_id, qty, idem, status = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 7]
  if status == 'confirmed' then
    redis.call('HINCRBY', buyers, user_id, qty)
  end
  redis.call('HSET', keys, user_id .. ':' .. idem, order_id)
  redis.call('HSET', res, order_id, cjson.encode({o = order_id, u = user_id, q = qty, k = idem,
    p = ARGV[i + 4], c = ARGV[i + 5], t = ARGV[i + 6], s = status}))
  redis.call('ZREM', awaited, order_id)
end
if shards > 1 and shard > 0 then
  total = sold
end
-- Numbers jump above any given before, in this shard's class (shard k gives k + shards * i).
local nseq = math.max(seq, high, shard)
nseq = nseq + (shard - nseq) % shards + 1073741824 * shards
redis.call('HSET', inv, 'total', total, 'remaining', total - sold, 'sold', sold, 'pending', held,
  'limit', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4], 'price', ARGV[5], 'currency', ARGV[6], 'fence', ARGV[7],
  'seq', string.format('%.0f', nseq), 'gen', ARGV[10])
if shards > 1 then
  redis.call('HSET', inv, 'shards', shards)
  if shard == 0 then
    redis.call('HSET', inv, 'saletotal', ARGV[13])
  end
end
redis.call('HDEL', inv, 'rolledback')
reply[2], reply[3] = tostring(total - sold), tostring(sold)
return reply
