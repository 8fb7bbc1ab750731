-- A purchase spends its buyer's admission to a sale's waiting room. The spent admission moves
-- from 'live' to 'held': it keeps holding its share of the stock until the purchase's
-- reservation has taken the stock (the admission pass sees the buyer in the sale's 'buyers'),
-- or for the pass's hold at most (a purchase refused, or a sharded sale whose buyers are
-- elsewhere); 'held' keeps the time it was spent.
--
-- KEYS[1] adm, KEYS[2] live, KEYS[3] held (room_admit.lua), KEYS[4] keys (reserve.lua's:
-- "<user>:<idempotency key>" -> order id, the sale's, its head shard's if sharded)
-- ARGV: user, idempotency key
-- A purchase whose key already made an order, with no admission on record (the room's keys were
-- lost and the inventory rebuilt from PostgreSQL), is let through as 'spent': it is a replay.
-- Returns 'spent' | 'none' | 'expired' | 'used' (spent by another idempotency key)
local adm, live, held = KEYS[1], KEYS[2], KEYS[3]
local user, key = ARGV[1], ARGV[2]
local a = redis.call('HGET', adm, user)
if not a then
  if redis.call('HEXISTS', KEYS[4], user .. ':' .. key) == 1 then
    return 'spent'
  end
  return 'none'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind, untl = string.sub(a, 1, 1), string.match(a, '^%a:(%d+)')
if kind == 'A' then
  if now >= tonumber(untl) then
    redis.call('HSET', adm, user, 'X:' .. untl)
    redis.call('ZREM', live, user)
    return 'expired'
  end
  redis.call('HSET', adm, user, 'U:' .. untl .. ':' .. key)
  redis.call('ZREM', live, user)
  redis.call('ZADD', held, now, user)
  return 'spent'
end
if kind == 'U' then
  if string.sub(a, string.len(untl) + 4) == key then
    return 'spent'
  end
  return 'used'
end
return 'expired'
