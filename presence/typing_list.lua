-- typing_list.lua: drops expired typers and lists the rest.
-- KEYS[1] typing:{c:<conv>} sorted set (member userId, score expiry ms)
-- Reply: user ids, soonest expiry first (at most MaxTypers of them)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
