-- message_add: caches one message of a conversation, assigning its seq.
-- KEYS[1] messages:{c:C}  sorted set, score = seq, member = message JSON
-- KEYS[2] seq:{c:C}       sequence counter (no TTL: it must outlive the cache)
-- KEYS[3] msgids:{c:C}    hash "senderId:clientMessageId" -> message JSON
-- KEYS[4] msgidx:{c:C}    sorted set, member = KEYS[3] field, score = written at (ms)
-- ARGV[1] message JSON without seq and createdAt, starting with '{'
-- ARGV[2] seq to store (0 = take the next one from KEYS[2])
-- ARGV[3] createdAt, epoch ms (0 = Redis time)
-- ARGV[4] dedupe field "senderId:clientMessageId" ("" = no dedupe)
-- ARGV[5] messages kept (cap of KEYS[1])
-- ARGV[6] TTL in ms of KEYS[1], KEYS[3], KEYS[4]; also the dedupe window
-- ARGV[7] dedupe entries kept (cap of KEYS[3])
-- ARGV[8] publish prefix (optional; with ARGV[9] and ARGV[10..])
-- ARGV[9] publish suffix
-- ARGV[10..] Pub/Sub channels: a new message is published to each as
--            prefix .. stored message JSON .. suffix, in the same atomic
--            step as caching it, so a cached message has always been
--            published and publications follow seq order. A duplicate is
--            not published again.
-- Reply: {duplicate (0|1), stored message JSON}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[6])
local field = ARGV[4]

if field ~= '' then
  -- Forget ids older than the window, a bounded batch per call.
  local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', string.format('%d', now - ttl), 'LIMIT', 0, 256)
  if #old > 0 then
    redis.call('HDEL', KEYS[3], unpack(old))
    redis.call('ZREM', KEYS[4], unpack(old))
  end
  local seen = redis.call('HGET', KEYS[3], field)
  if seen then
    return {1, seen}
  end
end

local seq = tonumber(ARGV[2])
if seq == 0 then
  seq = redis.call('INCR', KEYS[2])
else
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if cur < seq then
    redis.call('SET', KEYS[2], string.format('%d', seq))
  end
  -- An explicit seq replaces whatever was cached under it.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], seq, seq)
end
local createdAt = tonumber(ARGV[3])
if createdAt == 0 then
  createdAt = now
end

local member = string.format('{"seq":%d,"createdAt":%d,', seq, createdAt) .. string.sub(ARGV[1], 2)
redis.call('ZADD', KEYS[1], string.format('%d', seq), member)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[5]) + 1))
redis.call('PEXPIRE', KEYS[1], ttl)

if field ~= '' then
  redis.call('HSET', KEYS[3], field, member)
  redis.call('ZADD', KEYS[4], string.format('%d', now), field)
  local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[7])
  if excess > 1000 then
    excess = 1000 -- bounded work per call after a lowered cap
  end
  if excess > 0 then
    local drop = redis.call('ZRANGE', KEYS[4], 0, excess - 1)
    redis.call('HDEL', KEYS[3], unpack(drop))
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, excess - 1)
  end
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
if #ARGV >= 10 then
  local payload = ARGV[8] .. member .. ARGV[9]
  for i = 10, #ARGV do
    redis.call('PUBLISH', ARGV[i], payload)
  end
end
return {0, member}
