-- node_heartbeat.lua: records a gateway node instance's heartbeat and
-- reports the dead ones.
-- KEYS[1] nodes sorted set (member instance id, score last heartbeat ms)
-- ARGV[1] instance id
-- ARGV[2] NodeTimeout ms: an instance whose heartbeat is older is dead
-- ARGV[3] purge age ms: members older than this are deleted (their device
--         entries have expired by then)
-- ARGV[4] "1" to mark the instance dead now (graceful shutdown), else ""
-- ARGV[5] max dead instances to return
-- Reply: dead instance ids
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local timeout = tonumber(ARGV[2])
-- A dead mark is "heartbeat just older than the timeout" rather than 0, so
-- the member stays (and stays dead) until the purge age like a crash would.
local score = now
if ARGV[4] == '1' then score = now - timeout - 1 end
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[3])))
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - timeout), 'LIMIT', 0, tonumber(ARGV[5]))
