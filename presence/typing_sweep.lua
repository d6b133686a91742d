-- typing_sweep.lua: drops the expired entries of one conversation's typing
-- set (the Cleanup service's typing sweep).
-- KEYS[1] typing:{c:<conv>} sorted set (member userId, score expiry ms)
-- ARGV[1] "1" to remove the expired entries, "" to only count
-- Reply: {expired entries (removed when ARGV[1] is "1"), live entries}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired
if ARGV[1] == '1' then
  expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
else
  expired = redis.call('ZCOUNT', KEYS[1], '-inf', now)
end
return {expired, redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')}
