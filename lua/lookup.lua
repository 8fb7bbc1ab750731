-- The answer a sale holds for one idempotency key (a Redis Cluster's purchase records it there).
--
-- KEYS[1] keys, KEYS[2] res (as in reserve.lua)
-- ARGV: "<user id>:<idempotency key>"
-- Returns {} (none), {'DUP', reservation} (its order; '' if the reservation is gone) or
-- {'REFUSED', refusal} (a final refusal as reserve.lua records it).
local prior = redis.call('HGET', KEYS[1], ARGV[1])
if not prior then
  return {}
end
if string.sub(prior, 1, 2) == 'R:' then
  return {'REFUSED', string.sub(prior, 3)}
end
return {'DUP', redis.call('HGET', KEYS[2], prior) or ''}
