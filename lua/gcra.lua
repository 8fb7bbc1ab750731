-- Rate limit with GCRA (generic cell rate algorithm): a burst of ARGV[1] requests, then ARGV[2]
-- per ARGV[3] seconds. Adapted from go-redis/redis_rate (BSD-2-Clause), itself from
-- rwz/redis-gcra (MIT, (c) 2017 Pavel Pravosud); here so that it can be pipelined with the
-- session check (one round trip per request for both).
--
-- KEYS[1] the client's counter
-- ARGV: burst, rate, period (s)
-- Returns {allowed (1/0), remaining, retry_after (s, string), reset_after (s, string)}
local burst, rate, period = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local emission_interval = period / rate
local burst_offset = emission_interval * burst
-- TIME relative to 2017-01-01 keeps the float's precision (good until 2048).
local t = redis.call('TIME')
local now = (t[1] - 1483228800) + (t[2] / 1000000)
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local new_tat = tat + emission_interval
local diff = now - (new_tat - burst_offset)
if diff < 0 then
  return {0, 0, tostring(-diff), tostring(tat - now)}
end
local reset = new_tat - now
redis.call('SET', KEYS[1], new_tat, 'EX', math.ceil(reset))
return {1, math.floor(diff / emission_interval), '-1', tostring(reset)}
