-- node_live.lua: lists the live gateway node instances.
-- KEYS[1] nodes sorted set (member instance id, score last heartbeat ms)
-- ARGV[1] NodeTimeout ms: an instance whose heartbeat is older is dead
-- ARGV[2] max instances to return
-- Reply: live instance ids (heartbeat at most NodeTimeout old)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
