-- Reserve stock for one purchase, atomically, in one round trip.
--
-- KEYS[1] inv      hash: total, remaining, sold (units taken), pending (of orders not yet durable),
--                  limit, starts, ends (unix ms), price, currency
-- KEYS[2] buyers   hash: user id -> units bought (reserved) in this sale
-- KEYS[3] keys     hash: "<user id>:<idempotency key>" -> order id
-- KEYS[4] res      hash: order id -> reservation (JSON)
-- KEYS[5] awaited  zset: order id -> time (ms) since it waits for PostgreSQL
-- ARGV: order id, user id, quantity, idempotency key, node (the API node that queues the order),
--       floor: the highest reservation number this node had accepted in the sale (0 if none),
--       that reservation's order id ('' if none) and the inventory's generation then ('' if none)
--
-- Returns {code, ...}:
--   {'OK', reservation, remaining, generation}   stock taken, reservation recorded
--   {'DUP', reservation, remaining, generation}  this user already used this key in this sale
--   {'NO_SALE'} {'NOT_STARTED'} {'ENDED'} {'SOLD_OUT'}
--   {'LIMIT', units still allowed}   {'INSUFFICIENT', units left}
--   {'SHORT', units left, units still allowed}  a shard of a sharded sale (its 'shards' above 1)
--                                    holds fewer units than asked: the adapter takes stock from
--                                    the other shards (give.lua, take.lua) and tries again, or
--                                    marks the shard 'drained' when they have none
--   {'FENCED', ms left}              the inventory was just restored (restore.lua): orders
--                                    accepted before the loss land first; or it is marked
--                                    rolled back and waits for its rebuild
--   {'ROLLED_BACK'}                  this node's floor shows the store lost reservations: the
--                                    inventory is now marked 'rolledback' (or was rebuilt since)
-- The inv hash may hold 'fence' (unix ms): no purchase is taken before it, and 'rebuilding' (a
-- sharded sale being rebuilt whole, restore.lua): none until it is done. Each reservation
-- takes the sale's next number ('seq', 'n' in the record), 'shards' apart on a sharded sale, so
-- that a number names its shard (shard k gives k, k + shards, ...). A floor above 'seq', or a floor
-- reservation the store no longer has, means the store lost reservations it had accepted (it
-- rolled back; numbers given since may be reused, hence the order id): the inventory is marked
-- 'rolledback' and refuses purchases until restore.lua rebuilds it. A floor counts only in the
-- generation it was taken in ('gen', new at each rebuild): a floor from before a rebuild (which
-- follows a loss; or a request in flight as it ran) tells the node of it (ROLLED_BACK), without
-- marking the rebuilt inventory: the orders it accepted before may be among those lost.
local inv, buyers, keys, res, awaited = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local order_id, user_id, qty, idem, node = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local floor, floor_id, floor_gen = tonumber(ARGV[6] or '0'), ARGV[7] or '', ARGV[8] or ''
local key_field = user_id .. ':' .. idem

local f = redis.call('HMGET', inv, 'remaining', 'limit', 'starts', 'ends', 'price', 'currency', 'fence', 'seq',
  'rolledback', 'gen', 'shards', 'rebuilding', 'drained')
if not f[1] then
  return {'NO_SALE'}
end
local remaining, limit, starts, ends = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
local gen = f[10] or ''
local shards = tonumber(f[11] or '1')

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The floor first, even for a key already used: this node must learn of a loss at once.
if floor_id ~= '' then
  if floor_gen ~= gen then
    return {'ROLLED_BACK'} -- rebuilt since this node's floor (after a loss): nothing to mark
  end
  if redis.call('HEXISTS', res, floor_id) == 0 or floor > tonumber(f[8] or '0') then
    redis.call('HSET', inv, 'rolledback', now)
    return {'ROLLED_BACK'}
  end
end

local prior = redis.call('HGET', keys, key_field)
if prior then
  return {'DUP', redis.call('HGET', res, prior) or '', f[1], gen}
end
if f[9] or f[12] then
  return {'FENCED', '1000'}
end
if f[7] and now < tonumber(f[7]) then
  return {'FENCED', tostring(tonumber(f[7]) - now)}
end
if now < starts then
  return {'NOT_STARTED'}
end
if now >= ends then
  return {'ENDED'}
end
local bought = tonumber(redis.call('HGET', buyers, user_id) or '0')
-- 'drained' (unix ms): until then the other shards are known to have nothing to give (the
-- adapter found them empty; a release or a raise anywhere clears it): answered as one inventory.
if shards > 1 and remaining < qty and not (f[13] and now < tonumber(f[13])) then
  return {'SHORT', tostring(remaining), tostring(limit - bought)}
end
if remaining <= 0 then
  return {'SOLD_OUT'}
end
if bought + qty > limit then
  return {'LIMIT', tostring(limit - bought)}
end
if remaining < qty then
  return {'INSUFFICIENT', tostring(remaining)}
end

remaining = redis.call('HINCRBY', inv, 'remaining', -qty)
local seq = redis.call('HINCRBY', inv, 'seq', shards)
redis.call('HINCRBY', inv, 'sold', qty)
redis.call('HINCRBY', inv, 'pending', qty)
redis.call('HINCRBY', buyers, user_id, qty)
redis.call('HSET', keys, key_field, order_id)
local rec = cjson.encode({o = order_id, u = user_id, q = qty, k = idem, p = f[5], c = f[6],
                          t = tostring(now), s = 'pending', d = node, n = seq})
redis.call('HSET', res, order_id, rec)
redis.call('ZADD', awaited, now, order_id)
return {'OK', rec, tostring(remaining), gen}
