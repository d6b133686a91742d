-- message_seqfloor: raises a conversation's sequence counter to at least a
-- value, creating it when missing (so NextSeq can tell a restored counter
-- from a lost one).
-- KEYS[1] seq:{c:C}  sequence counter
-- ARGV[1] floor (>= 0)
-- Reply: the counter after the call
local v = redis.call('GET', KEYS[1])
local floor = tonumber(ARGV[1])
if not v or tonumber(v) < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return tonumber(v)
