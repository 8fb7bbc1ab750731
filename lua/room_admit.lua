-- One admission pass over a sale's waiting room (docs/architecture.md, "The waiting room"):
--   1. admissions past their end leave the live set; an unused one is marked expired ('X'),
--      which frees its share of the stock; a spent one ('held', room_use.lua) stops holding its
--      share once its buyer's reservation is in the sale's 'buyers' (the stock is taken), or
--      at the end of its hold;
--   2. waiting shoppers silent for longer than the grace (counted from the start at the
--      earliest) lose their place;
--   3. up to the rate since the last pass (a bucket holding at most one second's worth), the
--      next shoppers in order are admitted, never more than the remaining stock can serve:
--      while live admissions x the per-user limit are fewer than the remaining units
--      (domain.CanAdmit is the Go copy).
-- Safe to run from any number of nodes: the bucket and the clock (TIME) are the store's.
--
-- KEYS[1] inv (the sale's, or its head shard's), KEYS[2..5] wait, seen, adm, state (room_place.lua),
-- KEYS[6] live   zset: user -> end of the admission (ms), admitted and not yet spent
-- KEYS[7] held   zset: user -> when it was spent (ms), the stock perhaps not yet taken
-- KEYS[8] buyers (reserve.lua's: user -> units bought; read on a one-shard sale only)
-- ARGV: rate (per second), ttl (ms), per-user limit, starts (ms), ends (ms), grace (ms),
--       remaining (the caller's reading), '1' to read KEYS[1] instead (a sale of one shard: its
--       stock is in this slot; the caller's reading stands if the inventory is not there),
--       hold (ms: how long a spent admission may hold its share without its reservation seen),
--       '1' for an automatic rate (the rate above is then its ceiling): it starts at a tenth of
--       the ceiling (at least 1) and, once a second from the start, grows by half while fewer
--       admissions are out unspent than one second's worth (the admitted are buying: the sale
--       serves them), or shrinks by a quarter while they pile up; kept in state ('rate', 'tuned')
-- Returns {remaining, outstanding, waiting, admitted, covered, closed, changed, expired, lost, now,
--          until, 'closing' (closed by this pass) | '', rate in force, admitted users...}
local inv, wait, seen, adm, state, live = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local held, buyers = KEYS[7], KEYS[8]
local rate, ttl, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local starts, ends, grace = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- 1. ended admissions
local expired = 0
local ended = redis.call('ZRANGEBYSCORE', live, '-inf', now)
for _, u in ipairs(ended) do
  local a = redis.call('HGET', adm, u)
  if a and string.sub(a, 1, 1) == 'A' then
    redis.call('HSET', adm, u, 'X' .. string.sub(a, 2))
    expired = expired + 1
  end
end
if #ended > 0 then
  redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
end
redis.call('ZREMRANGEBYSCORE', held, '-inf', now - tonumber(ARGV[9]))
if ARGV[8] == '1' then
  for _, u in ipairs(redis.call('ZRANGE', held, 0, -1)) do
    if redis.call('HEXISTS', buyers, u) == 1 then
      redis.call('ZREM', held, u)
    end
  end
end

-- 2. silent shoppers (at most 1000 a pass: the script stays short)
local lost = 0
if now >= starts + grace then
  local gone = redis.call('ZRANGEBYSCORE', seen, '-inf', now - grace, 'LIMIT', 0, 1000)
  for _, u in ipairs(gone) do
    lost = lost + redis.call('ZREM', wait, u)
    redis.call('ZREM', seen, u)
  end
end

-- The automatic rate, tuned once a second on the admissions out unspent (after step 1).
if ARGV[10] == '1' then
  local ceiling = rate
  local a = redis.call('HMGET', state, 'rate', 'tuned')
  rate = tonumber(a[1] or '0')
  local tuned = tonumber(a[2] or '0')
  if rate < 1 then
    rate = math.max(1, math.floor(ceiling / 10))
  end
  if now >= starts and tuned > 0 and now - tuned >= 1000 then
    if redis.call('ZCARD', live) < rate then
      rate = math.min(ceiling, math.ceil(rate * 1.5))
    else
      rate = math.max(1, math.floor(rate * 0.75))
    end
    tuned = now
  elseif now >= starts and tuned == 0 then
    tuned = now
  end
  redis.call('HSET', state, 'rate', rate, 'tuned', tuned)
end

-- 3. admission
local remaining = tonumber(ARGV[7])
if ARGV[8] == '1' then
  remaining = tonumber(redis.call('HGET', inv, 'remaining') or ARGV[7])
end
local st = redis.call('HMGET', state, 'last', 'credit', 'admitted', 'covered', 'closed')
local last, credit = tonumber(st[1] or starts), tonumber(st[2] or '0')
local admitted, was_covered, was_closed = tonumber(st[3] or '0'), st[4] or '0', st[5] or '0'
if now < starts or now >= ends then
  credit = 0
else
  credit = math.min(rate, credit + math.max(now - last, 0) * rate / 1000)
end
local outstanding = redis.call('ZCARD', live) + redis.call('ZCARD', held)
local capacity = 0
if remaining > 0 then
  capacity = math.max(math.floor((remaining + limit - 1) / limit) - outstanding, 0)
end
local n = math.min(math.floor(credit), capacity, redis.call('ZCARD', wait))
local out = {}
if n > 0 then
  local popped = redis.call('ZPOPMIN', wait, n)
  for i = 1, #popped, 2 do
    local u = popped[i]
    redis.call('HSET', adm, u, 'A:' .. (now + ttl))
    redis.call('ZADD', live, now + ttl, u)
    redis.call('ZREM', seen, u)
    out[#out + 1] = u
  end
  credit = credit - #out
  admitted = admitted + #out
  outstanding = outstanding + #out
  capacity = capacity - #out
end
local waiting = redis.call('ZCARD', wait)
local covered, closed = '0', '0'
if remaining <= 0 or now >= ends then
  closed = '1'
elseif capacity <= 0 and waiting > 0 then
  covered = '1'
end
local changed = '0'
if #out > 0 or expired > 0 or lost > 0 or covered ~= was_covered or closed ~= was_closed then
  changed = '1'
end
redis.call('HSET', state, 'last', now, 'credit', tostring(credit), 'admitted', admitted, 'covered', covered,
  'closed', closed)
local reply = {tostring(remaining), tostring(outstanding), tostring(waiting), tostring(admitted), covered, closed,
  changed, tostring(expired), tostring(lost), tostring(now), tostring(now + ttl)}
if closed == '1' and was_closed ~= '1' then
  reply[#reply + 1] = 'closing'
else
  reply[#reply + 1] = ''
end
reply[#reply + 1] = tostring(rate)
for _, u in ipairs(out) do
  reply[#reply + 1] = u
end
return reply
