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
-- A sale with a waiting room (ARGV[14] '1') adds its room's keys last: KEYS[n-2] adm, KEYS[n-1]
-- live, KEYS[n] held (room_admit.lua's, in the slot of the sale's head shard). A purchase then
-- needs its buyer's live admission, {'ADMISSION', 'none' | 'expired' | 'used'} otherwise (the
-- key stays free), and spends it only with the stock it takes, in this same step: a purchase
-- refused for any reason keeps its admission for the next try. A replay needs none.
--
-- On a Redis Cluster the claim and the session are sent beside this call, to their own nodes,
-- and the rate-limit counter is the sale's (KEYS[6], in its slot; ARGV as above): a final
-- refusal is recorded in the keys hash ("R:" and {x = the reply, q = the quantity}), where a
-- request with the same key finds it: {'REFUSED', that JSON}.
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
local room = ARGV[14] == '1'
local n = room and #KEYS - 3 or #KEYS
local claim = n == 8 and KEYS[6] or nil -- a single Redis: the claim and the gate's keys
local on_cluster = n == 6             -- a Cluster: the sale's rate-limit counter only
local rate_key = (claim and KEYS[8]) or (on_cluster and KEYS[6]) or nil
local fingerprint, sale_id = ARGV[9] or '', ARGV[10]
local per_minute = tonumber(ARGV[13] or '0')

if claim and ARGV[12] == '1' and redis.call('EXISTS', KEYS[7]) == 0 then
  return {'NO_SESSION'}
end
local rate_left, rate_reset
if rate_key and per_minute > 0 then -- GCRA: a burst of per_minute, then per_minute a minute
  local emission_interval = 60 / per_minute
  local t = redis.call('TIME')
  local now = (t[1] - 1483228800) + (t[2] / 1000000)
  local tat = math.max(tonumber(redis.call('GET', rate_key) or now), now)
  local new_tat = tat + emission_interval
  local diff = now - (new_tat - emission_interval * per_minute)
  if diff < 0 then
    return {'RATE_LIMITED', tostring(-diff), tostring(tat - now)}
  end
  rate_reset = new_tat - now
  redis.call('SET', rate_key, new_tat, 'EX', math.ceil(rate_reset))
  rate_left = math.floor(diff / emission_interval)
end
-- answer ends a reply with the rate limit's decision, and records a final answer in the claim
-- (rec: the reservation; or refusal: the reply, for this quantity), or on a Cluster a final
-- refusal in the keys hash (an order is there already).
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
  elseif on_cluster and final and not rec then
    redis.call('HSET', keys, key_field, 'R:' .. cjson.encode({x = reply, q = qty}))
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
if prior and string.sub(prior, 1, 2) == 'R:' then
  return answer({'REFUSED', string.sub(prior, 3)})
end
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
local admitted_until -- the buyer's live admission's end (a sale with a room)
if room then
  local adm = KEYS[n + 1]
  local a = redis.call('HGET', adm, user_id)
  if not a then
    return answer({'ADMISSION', 'none'})
  end
  local kind, untl = string.sub(a, 1, 1), string.match(a, '^%a:(%d+)')
  if kind == 'U' then
    return answer({'ADMISSION', 'used'})
  end
  if kind == 'X' or now >= tonumber(untl) then
    if kind == 'A' then -- ended unused: its share is free (as the next admission pass would do)
      redis.call('HSET', adm, user_id, 'X:' .. untl)
      redis.call('ZREM', KEYS[n + 2], user_id)
    end
    return answer({'ADMISSION', 'expired'})
  end
  admitted_until = untl
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
if admitted_until then -- spent with the stock it lets the buyer take
  redis.call('HSET', KEYS[n + 1], user_id, 'U:' .. admitted_until .. ':' .. idem)
  redis.call('ZREM', KEYS[n + 2], user_id)
  if shards > 1 then -- the admission pass sees only the head shard's buyers: it holds a while
    redis.call('ZADD', KEYS[n + 3], now, user_id)
  end
end
return answer({'OK', rec, tostring(remaining), gen}, rec, true)
