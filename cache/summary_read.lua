-- summary_read: one conversation's list entry as one user sees it.
-- KEYS[1] summary:{c:C}  hash lastSeq, msgSeq, msg
-- KEYS[2] reads:{c:C}    hash userId -> seq (reads_mark)
-- KEYS[3] counted:{c:C}  counted seqs as runs (counted_lib, prepended)
-- KEYS[4] messages:{c:C} recent messages by seq: the last message is read
--                        from there while cached, so an edit or delete
--                        that updates the cached original shows in the list
-- ARGV[1] userId
-- ARGV[2] UnreadLimit: unread saturates there
-- Reply: {lastSeq (-1 = summary missing), last counted message JSON ('' =
--   none), read seq, unread, reads filled (1) or not (0)}.
--   unread = counted seqs above the read seq: the user's own messages are
--   at or below it (summarize), so only messages from others count.
local last = redis.call('HGET', KEYS[1], 'lastSeq')
local msg = redis.call('HGET', KEYS[1], 'msg') or ''
local msgSeq = redis.call('HGET', KEYS[1], 'msgSeq')
if msgSeq then
  local cached = redis.call('ZRANGEBYSCORE', KEYS[4], msgSeq, msgSeq)
  if #cached > 0 then
    msg = cached[1]
  end
end
local read = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local unread = unread_count(KEYS[3], read, tonumber(ARGV[2]))
return {tonumber(last or '-1'), msg, read, unread, redis.call('HEXISTS', KEYS[2], '~')}
