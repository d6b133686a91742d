-- message_reserve: the first step of a durable send, in one round trip:
-- answers a resend from the messages cache, else takes the next seq and
-- records it as pending until message_commit (or message_settle) settles it.
-- It also reads the conversation's cached members in the same atomic step,
-- so they are the members as of the reservation (docs/delivery.md,
-- "Membership"): no second read is needed after it.
-- KEYS[1] seq:{c:C}       sequence counter
-- KEYS[2] dedupe:{c:C}    sorted set, member "senderId:clientMessageId", score = seq
-- KEYS[3] pending:{c:C}   sorted set, score = seq, member = "seq:deadline ms"
-- KEYS[4] messages:{c:C}  sorted set, score = seq, member = message JSON
-- KEYS[5] members:{c:C}   the directory's cached member set ("~..." markers
--                         mean not cached, just changed or not found)
-- ARGV[1] dedupe field "senderId:clientMessageId" ("" = no dedupe)
-- ARGV[2] settle timeout in ms: after it, another sender may skip the seq
-- ARGV[3] sender who must be a member ("" = no check: a backend send)
-- Reply: {1, cached message JSON} for a resend of a cached message (it was
--        published; the copy is its current state, edits applied),
--        {0, seq, known, member...} with the next seq (also for a resend
--        whose original left the cache: the store refuses it and the send
--        answers the original); known = 1 when the members follow, 0 when
--        they are not cached (read them after this),
--        {-1} when the counter is missing (a new conversation, or Redis lost
--        its data): restore it from the store with message_seqfloor, retry,
--        {-2} when ARGV[3] is set and the members are not cached: nothing
--        was taken; fill them (the directory) and retry.
-- Error reply "forbidden ..." when ARGV[3] is not among the cached members.
local members = redis.call('SMEMBERS', KEYS[5])
local known = #members > 0 and string.sub(members[1], 1, 1) ~= '~'
if ARGV[3] ~= '' then
  if not known then
    return {-2}
  end
  if redis.call('SISMEMBER', KEYS[5], ARGV[3]) == 0 then
    return redis.error_reply('forbidden not a member of this conversation')
  end
end
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
local reply = {0, seq, 0}
if known then
  reply[3] = 1
  for i = 1, #members do
    reply[3 + i] = members[i]
  end
end
return reply
