-- message_reserve: the first step of a durable send, in one round trip:
-- answers a resend from the dedupe cache, else takes the next seq.
-- KEYS[1] seq:{c:C}     sequence counter
-- KEYS[2] msgids:{c:C}  hash "senderId:clientMessageId" -> message JSON
-- ARGV[1] dedupe field "senderId:clientMessageId" ("" = no dedupe)
-- Reply: {1, cached message JSON} for a cached resend (it was published),
--        {0, seq} with the next seq,
--        {-1} when the counter is missing (a new conversation, or Redis lost
--        its data): restore it from the store with message_seqfloor, retry.
if ARGV[1] ~= '' then
  local seen = redis.call('HGET', KEYS[2], ARGV[1])
  if seen then
    return {1, seen}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
return {0, redis.call('INCR', KEYS[1])}
