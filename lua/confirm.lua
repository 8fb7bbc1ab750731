-- Record that a reservation's order is durable in PostgreSQL; it is no longer awaited.
--
-- KEYS[1] res, KEYS[2] awaited, KEYS[3] inv (as in reserve.lua)
-- ARGV: order id
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if rec then
  local r = cjson.decode(rec)
  if r.s == 'pending' then
    r.s = 'confirmed'
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
    redis.call('HINCRBY', KEYS[3], 'pending', -r.q)
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
