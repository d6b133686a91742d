-- typing_start.lua: marks a user as typing in a conversation.
-- KEYS[1] typing:{c:<conv>} sorted set (member userId, score expiry ms)
-- ARGV[1] userId
-- ARGV[2] TypingTTL ms
-- ARGV[3] MaxTypers; beyond it the entries closest to expiry are dropped
-- Reply: number of typers after the call
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[3])
if n > max then
  redis.call('ZPOPMIN', KEYS[1], n - max)
  n = max
end
redis.call('PEXPIRE', KEYS[1], ttl)
return n
