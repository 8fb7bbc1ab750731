-- A shopper's place in a sale's waiting room: joining (ARGV[2] '1') or looking (a heartbeat).
-- Every room key shares the sale's {tenant:sale} hash tag with its inventory.
--
-- KEYS[1] wait   zset: user -> sort key (a random draw below 1 before the start, then 1 + arrival)
-- KEYS[2] seen   zset: user -> last heartbeat (ms), waiting shoppers only
-- KEYS[3] adm    hash: user -> 'A:<until>' admitted | 'U:<until>:<idempotency key>' used
--                       | 'X:<until>' expired unused; never removed: an admission is given once
-- KEYS[4] state  hash: admitted (count), covered, closed (0|1), arrivals, last, credit
-- KEYS[5] buyers reserve.lua's (user -> units bought), the sale's (its head shard's if sharded)
-- ARGV: user, join ('1'|'0'), draw (the new place's key before the start), starts (ms),
--       '1' to read KEYS[5] (a one-shard sale: a sharded sale's buyers are in their home shards)
-- A shopper found among the sale's buyers without an admission on record is answered 'used':
-- the room's keys were lost (Redis lost its data; the inventory, buyers included, is rebuilt
-- from PostgreSQL's orders, the room is not), and a shopper who bought is never admitted again.
-- Returns {state, position, key, until, waiting, admitted, covered, closed, rate}
--   rate: the automatic rate in force ('' if none: a fixed rate, or no pass yet)
--   state: waiting | closed | admitted | used | expired | none (not joined, ARGV[2] '0')
local wait, seen, adm, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user, join, starts = ARGV[1], ARGV[2] == '1', tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HMGET', state, 'admitted', 'covered', 'closed', 'rate')
local admitted, covered, closed, rate = st[1] or '0', st[2] or '0', st[3] or '0', st[4] or ''

local a = redis.call('HGET', adm, user)
if a then
  local kind, untl = string.sub(a, 1, 1), string.match(a, '^%a:(%d+)')
  local s = 'admitted'
  if kind == 'U' then
    s = 'used'
  elseif kind == 'X' or now >= tonumber(untl) then
    s = 'expired'
  end
  return {s, '0', '0', untl, tostring(redis.call('ZCARD', wait)), admitted, covered, closed, rate}
end

local key = redis.call('ZSCORE', wait, user)
if not key and ARGV[5] == '1' and redis.call('HEXISTS', KEYS[5], user) == 1 then
  return {'used', '0', '0', '0', tostring(redis.call('ZCARD', wait)), admitted, covered, closed, rate}
end
if not key then
  if not join then
    return {'none'}
  end
  if now < starts then
    key = ARGV[3]
  else
    key = tostring(1 + redis.call('HINCRBY', state, 'arrivals', 1))
  end
  redis.call('ZADD', wait, key, user)
end
redis.call('ZADD', seen, now, user)
local s = 'waiting'
if closed == '1' then
  s = 'closed'
end
return {s, tostring(redis.call('ZRANK', wait, user) + 1), key, '0', tostring(redis.call('ZCARD', wait)),
  admitted, covered, closed, rate}
