-- queue_done: a leased job finished (delivered, or its token is gone): it
-- is forgotten and its id remembered for the dedupe window.
-- KEYS[1] leased  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] done
-- ARGV[1] id
-- Reply: 1 when the job still existed
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], string.format('%d', now), ARGV[1])
return redis.call('HDEL', KEYS[2], ARGV[1])
