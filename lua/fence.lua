-- Refuse purchases of a sale until a time (reserve.lua answers FENCED), or a later one already
-- set: an API node that learned of a loss takes its recent orders' stock again first.
--
-- KEYS[1] inv
-- ARGV: fence (unix ms)
-- Returns 1 if the sale has an inventory, 0 otherwise.
local cur = redis.call('HMGET', KEYS[1], 'total', 'fence')
if not cur[1] then
  return 0
end
if tonumber(cur[2] or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'fence', ARGV[1])
end
return 1
