-- online_due.lua: lists index members whose score (stale-at time) has passed.
-- KEYS[1] online:users sorted set
-- ARGV[1] max members to return
-- Reply: flat {member, score, member, score, ...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
