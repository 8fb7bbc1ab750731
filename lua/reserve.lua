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
-- On a single Redis (not a Cluster, whose slots keep these keys apart from the sale's), the
-- purchase's other steps come in the same call, so that it costs one round trip and leaves
-- nothing to undo:
-- KEYS[6] claim    string: the idempotency key's record (JSON), across the buyer's sales
-- KEYS[7] session  the buyer's session (checked if ARGV[12] is '1')
-- KEYS[8] rate     the client's rate-limit counter (GCRA, as gcra.lua; if ARGV[13] > 0)
-- ARGV[9] the request's fingerprint, ARGV[10] the sale id, ARGV[11] how long a final answer is
-- kept (ms), ARGV[12] '1' to check the session, ARGV[13] purchases per minute (0: no limit).
-- Before anything else: {'NO_SESSION'}, or {'RATE_LIMITED', retry after (s), reset after (s)}.
-- Then a claim already made is answered as {'KNOWN', record}: its replay (or another request's
-- key). Otherwise the claim is written with the final answer (an order, or a refusal: sold out,
-- over the limit, short of stock, ended), never with another (not started, fenced, short,
-- rolled back), so that the key stays free for those. With a rate limit every other reply ends
-- with two more items: the requests left and the reset (s).
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
local claim, fingerprint, sale_id = KEYS[6], ARGV[9] or '', ARGV[10]
local per_minute = tonumber(ARGV[13] or '0')

if claim and ARGV[12] == '1' and redis.call('EXISTS', KEYS[7]) == 0 then
  return {'NO_SESSION'}
end
local rate_left, rate_reset
if claim and per_minute > 0 then -- GCRA: a burst of per_minute, then per_minute a minute
  local emission_interval = 60 / per_minute
  local t = redis.call('TIME')
  local now = (t[1] - 1483228800) + (t[2] / 1000000)
  local tat = math.max(tonumber(redis.call('GET', KEYS[8]) or now), now)
  local new_tat = tat + emission_interval
  local diff = now - (new_tat - emission_interval * per_minute)
  if diff < 0 then
    return {'RATE_LIMITED', tostring(-diff), tostring(tat - now)}
  end
  rate_reset = new_tat - now
  redis.call('SET', KEYS[8], new_tat, 'EX', math.ceil(rate_reset))
  rate_left = math.floor(diff / emission_interval)
end
-- answer ends a reply with the rate limit's decision, and records a final answer in the claim
-- (rec: the reservation; or refusal: the reply, for this quantity).
local function answer(reply, rec, final)
  if claim and final then
    local record = {f = fingerprint, d = true, s = sale_id}
    if rec then
      record.r = rec
    else
      record.x = reply
      record.q = qty
    end
    redis.call('SET', claim, cjson.encode(record), 'PX', ARGV[11])
  end
  if rate_left then
    reply[#reply + 1] = tostring(rate_left)
    reply[#reply + 1] = tostring(rate_reset)
  end
  return reply
end

local f = redis.call('HMGET', inv, 'remaining', 'limit', 'starts', 'ends', 'price', 'currency', 'fence', 'seq',
  'rolledback', 'gen', 'shards', 'rebuilding', 'drained')
if not f[1] then
  return answer({'NO_SALE'})
end
local remaining, limit, starts, ends = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
local gen = f[10] or ''
local shards = tonumber(f[11] or '1')

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The floor first, even for a key already used: this node must learn of a loss at once.
if floor_id ~= '' then
  if floor_gen ~= gen then
    return answer({'ROLLED_BACK'}) -- rebuilt since this node's floor (after a loss): nothing to mark
  end
  if redis.call('HEXISTS', res, floor_id) == 0 or floor > tonumber(f[8] or '0') then
    redis.call('HSET', inv, 'rolledback', now)
    return answer({'ROLLED_BACK'})
  end
end

if claim then
  local known = redis.call('GET', claim)
  if known then
    return answer({'KNOWN', known})
  end
end
local prior = redis.call('HGET', keys, key_field)
if prior then
  local rec = redis.call('HGET', res, prior) or ''
  return answer({'DUP', rec, f[1], gen}, rec, rec ~= '')
end
if f[9] or f[12] then
  return answer({'FENCED', '1000'})
end
if f[7] and now < tonumber(f[7]) then
  return answer({'FENCED', tostring(tonumber(f[7]) - now)})
end
if now < starts then
  return answer({'NOT_STARTED'})
end
if now >= ends then
  return answer({'ENDED'}, nil, true)
end
local bought = tonumber(redis.call('HGET', buyers, user_id) or '0')
-- 'drained' (unix ms): until then the other shards are known to have nothing to give (the
-- adapter found them empty; a release or a raise anywhere clears it): answered as one inventory.
if shards > 1 and remaining < qty and not (f[13] and now < tonumber(f[13])) then
  return answer({'SHORT', tostring(remaining), tostring(limit - bought)})
end
if remaining <= 0 then
  return answer({'SOLD_OUT'}, nil, true)
end
if bought + qty > limit then
  return answer({'LIMIT', tostring(limit - bought)}, nil, true)
end
if remaining < qty then
  return answer({'INSUFFICIENT', tostring(remaining)}, nil, true)
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
return answer({'OK', rec, tostring(remaining), gen}, rec, true)
