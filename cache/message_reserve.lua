-- message_reserve: the first step of a durable send, in one round trip:
-- answers a resend from the messages cache, else takes the next seq and
-- records it as pending until message_commit (or message_settle) settles it.
-- KEYS[1] seq:{c:C}       sequence counter
-- KEYS[2] dedupe:{c:C}    sorted set, member "senderId:clientMessageId", score = seq
-- KEYS[3] pending:{c:C}   sorted set, score = seq, member = "seq:deadline ms"
-- KEYS[4] messages:{c:C}  sorted set, score = seq, member = message JSON
-- ARGV[1] dedupe field "senderId:clientMessageId" ("" = no dedupe)
-- ARGV[2] settle timeout in ms: after it, another sender may skip the seq
-- Reply: {1, cached message JSON} for a resend of a cached message (it was
--        published; the copy is its current state, edits applied),
--        {0, seq} with the next seq (also for a resend whose original left
--        the cache: the store refuses it and the send answers the original),
--        {-1} when the counter is missing (a new conversation, or Redis lost
--        its data): restore it from the store with message_seqfloor, retry.
if ARGV[1] ~= '' then
  local seen = cached_original(KEYS[4], KEYS[2], ARGV[1])
  if seen then
    return {1, seen}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
redis.call('ZADD', KEYS[3], string.format('%d', seq), string.format('%d:%d', seq, deadline))
return {0, seq}
