-- Puts back a waiting room's admissions that Redis lost (its data, or this sale's keys), from
-- PostgreSQL's record (room_admissions), before any admission pass runs again: a shopper
-- recorded as admitted is never placed in the queue nor admitted again.
--
-- KEYS[1] wait, KEYS[2] seen, KEYS[3] adm, KEYS[4] state, KEYS[5] live (room_admit.lua's)
-- ARGV: triples of user, the admission's end (unix ms), and the idempotency key of the user's
--       order in the sale ('' if none: not bought)
-- A bought admission comes back spent by its order's key ('U'); the others admitted until their
-- end ('A', live) or, past it, expired ('X'). An entry the store holds already is kept. The
-- state's 'last' is set: the room is present again (room_admit.lua sets it on every pass).
-- Returns the number of admissions put back.
local wait, seen, adm, state, live = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 0
for i = 1, #ARGV, 3 do
  local user, untl, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', adm, user) == 0 then
    if key ~= '' then
      redis.call('HSET', adm, user, 'U:' .. untl .. ':' .. key)
    elseif now < tonumber(untl) then
      redis.call('HSET', adm, user, 'A:' .. untl)
      redis.call('ZADD', live, untl, user)
    else
      redis.call('HSET', adm, user, 'X:' .. untl)
    end
    n = n + 1
  end
  redis.call('ZREM', wait, user)
  redis.call('ZREM', seen, user)
end
if redis.call('HEXISTS', state, 'last') == 0 then
  redis.call('HSET', state, 'last', now)
end
return n
