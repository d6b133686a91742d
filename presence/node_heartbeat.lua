-- node_heartbeat.lua: records a gateway node instance's heartbeat and
-- connection count, and reports the dead instances.
-- KEYS[1] nodes sorted set (member instance id, score last heartbeat ms)
-- KEYS[2] nodeinfo hash (field instance id, value "<connections>|<heartbeat ms>",
--         or "left" once the instance marked itself dead; same slot as KEYS[1])
-- ARGV[1] instance id
-- ARGV[2] NodeTimeout ms: an instance whose heartbeat is older is dead
-- ARGV[3] purge age ms: members older than this are deleted (their device
--         entries have expired by then), with their nodeinfo fields
-- ARGV[4] "1" to mark the instance dead now (graceful shutdown), else ""
-- ARGV[5] max dead instances to return
-- ARGV[6] this instance's connection count
-- Reply: dead instance ids
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local timeout = tonumber(ARGV[2])
-- A dead mark is "heartbeat just older than the timeout" rather than 0, so
-- the member stays (and stays dead) until the purge age like a crash would.
-- It is final: a beat the instance sent before it stopped can still arrive
-- after the mark (over another pooled connection), and must not revive it.
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], now - timeout - 1, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], 'left')
elseif redis.call('HGET', KEYS[2], ARGV[1]) ~= 'left' then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[6] .. '|' .. now)
end
local cutoff = '(' .. (now - tonumber(ARGV[3]))
local purged = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, 1000)
if #purged > 0 then
  redis.call('HDEL', KEYS[2], unpack(purged))
  redis.call('ZREM', KEYS[1], unpack(purged))
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - timeout), 'LIMIT', 0, tonumber(ARGV[5]))
