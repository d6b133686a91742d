-- message_nextseq: takes the next seq of a conversation, unless its counter
-- is missing (a new conversation, or Redis lost its data): then the caller
-- restores it from the store with message_seqfloor and asks again.
-- KEYS[1] seq:{c:C}  sequence counter
-- Reply: the new seq, or -1 when the counter is missing
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
return redis.call('INCR', KEYS[1])
