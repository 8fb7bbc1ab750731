-- Take the units of a transfer given by another shard of the sale (give.lua), once: the
-- transfer's id stays in xin (for the sale's life, or until a rebuild), so a retry, or a settle
-- pass that read the donor's record before it was settled, adds nothing.
--
-- KEYS[1] inv (the receiving shard's, as in reserve.lua), KEYS[2] xin: set of transfer ids taken
-- ARGV: transfer id, units, the donor's generation when it gave
-- Returns {'OK'} | {'HAS'} (taken before) | {'NO_SALE'}
--   | {'STALE'} (the sale was rebuilt since the units were given: the rebuild counted them)
--   | {'FENCED'} (rolled back or being rebuilt: the rebuild will count them)
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {'HAS'}
end
local f = redis.call('HMGET', KEYS[1], 'total', 'gen', 'rolledback', 'rebuilding')
if not f[1] then
  return {'NO_SALE'}
end
if (f[2] or '') ~= ARGV[3] then
  return {'STALE'}
end
if f[3] or f[4] then
  return {'FENCED'}
end
redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'total', tonumber(ARGV[2]))
redis.call('SADD', KEYS[2], ARGV[1])
return {'OK'}
