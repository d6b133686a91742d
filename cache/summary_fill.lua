-- summary_fill: restores a conversation's list entry from the store after
-- Redis lost it, raising each part only, so a message published meanwhile
-- wins.
-- KEYS[1] summary:{c:C}  hash lastSeq, msgSeq, msg (message_lib summarize)
-- KEYS[2] counted:{c:C}  counted seqs as runs (counted_lib, prepended)
-- ARGV[1] last seq
-- ARGV[2] seq of the last counted message (0 = none)
-- ARGV[3] its JSON
-- ARGV[4..] seqs of recent counted messages (restores unread counts)
-- Reply: "OK"
if tonumber(redis.call('HGET', KEYS[1], 'lastSeq') or '-1') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'lastSeq', ARGV[1])
end
if ARGV[2] ~= '0' and tonumber(redis.call('HGET', KEYS[1], 'msgSeq') or '0') < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'msgSeq', ARGV[2], 'msg', ARGV[3])
end
-- The fill brings at most a page of seqs; later adds trim to the limit.
for i = 4, #ARGV do
  count_seq(KEYS[2], tonumber(ARGV[i]), math.huge)
end
return 'OK'
