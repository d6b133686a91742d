-- message_seqfloor: raises a conversation's sequence counter to at least a
-- value, creating it when missing (so NextSeq can tell a restored counter
-- from a lost one). A raise means the seqs up to the floor were reserved in
-- a Redis that lost them: KEYS[2] remembers that, so message_commit may
-- publish a stored message among them that was never published.
-- KEYS[1] seq:{c:C}       sequence counter
-- KEYS[2] restored:{c:C}  the highest floor that raised the counter
-- ARGV[1] floor (>= 0)
-- Reply: the counter after the call
local v = redis.call('GET', KEYS[1])
local floor = tonumber(ARGV[1])
if not v or tonumber(v) < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  if floor > 0 then
    redis.call('SET', KEYS[2], ARGV[1])
  end
  return floor
end
return tonumber(v)
