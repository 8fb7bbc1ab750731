-- Give stock from one shard of a sharded sale to another that is short (the first half of a
-- transfer; take.lua is the second). The units leave the donor at once and are recorded under
-- the transfer's id until the receiver has them: a transfer cut short by a crash is finished
-- from this record (the worker takes, then settles it), so no unit is lost or counted twice.
--
-- KEYS[1] inv (the donor shard's, as in reserve.lua), KEYS[2] xout: hash, transfer id ->
--         "receiver shard:units:unix ms:generation"
-- ARGV: transfer id, units wanted, receiver shard, shards: a donor with more than the units
--       wanted gives at least its stock divided by shards (a batch, so that the next purchases
--       of the short shard need not take again), never more than it has
-- Returns {'OK', units given, generation} | {'EMPTY'} | {'NO_SALE'}
--   | {'FENCED'} (rolled back or being rebuilt: its stock waits). A restore's fence does not stop
--   a transfer: purchases wait for it on every shard, while adoptions, which the fence is
--   for, may need the stock of another shard.
local f = redis.call('HMGET', KEYS[1], 'remaining', 'rolledback', 'rebuilding', 'gen')
if not f[1] then
  return {'NO_SALE'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if f[2] or f[3] then
  return {'FENCED'}
end
local remaining = tonumber(f[1])
if remaining <= 0 then
  return {'EMPTY'}
end
local n = math.min(remaining, math.max(tonumber(ARGV[2]), math.floor(remaining / tonumber(ARGV[4]))))
redis.call('HINCRBY', KEYS[1], 'remaining', -n)
redis.call('HINCRBY', KEYS[1], 'total', -n)
local gen = f[4] or ''
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ':' .. n .. ':' .. now .. ':' .. gen)
return {'OK', tostring(n), gen}
