-- message_add: caches one message of a conversation, assigning its seq (the
-- cache service's AddMessage; durable sends use message_reserve and
-- message_commit instead).
-- KEYS[1] messages:{c:C}  sorted set, score = seq, member = message JSON
-- KEYS[2] seq:{c:C}       sequence counter (no TTL: it must outlive the cache)
-- KEYS[3] dedupe:{c:C}    sorted set, member "senderId:clientMessageId", score = seq
-- ARGV[1] message JSON without seq and createdAt, starting with '{'
-- ARGV[2] seq to store (0 = take the next one from KEYS[2])
-- ARGV[3] createdAt, epoch ms (0 = Redis time)
-- ARGV[4] dedupe field "senderId:clientMessageId" ("" = no dedupe)
-- ARGV[5] messages kept (cap of KEYS[1])
-- ARGV[6] TTL in ms of KEYS[1] and KEYS[3]
-- ARGV[7] dedupe entries kept (cap of KEYS[3])
-- Reply: {duplicate (0|1), stored message JSON}: a duplicate is a resend of
--   a message still cached (its current copy); once it left the cache the
--   same clientMessageId makes a new message (durable sends have the store).
local now = now_ms()
local ttl = tonumber(ARGV[6])
local field = ARGV[4]

if field ~= '' then
  local seen = cached_original(KEYS[1], KEYS[3], field)
  if seen then
    return {1, seen}
  end
end

local seq = tonumber(ARGV[2])
if seq == 0 then
  seq = redis.call('INCR', KEYS[2])
else
  seq = ARGV[2]
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if cur < tonumber(seq) then
    redis.call('SET', KEYS[2], seq)
  end
end
local createdAt = tonumber(ARGV[3])
if createdAt == 0 then
  createdAt = now
end

local member = string.format('{"seq":%d,"createdAt":%d,', seq, createdAt) .. string.sub(ARGV[1], 2)
cache_publish(KEYS[1], KEYS[3], seq, member, field, ttl, tonumber(ARGV[5]), tonumber(ARGV[7]), '', '', nil, false)
return {0, member}
