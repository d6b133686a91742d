-- message_seqfloor: raises a conversation's sequence counter to at least a value.
-- KEYS[1] seq:{c:C}  sequence counter
-- ARGV[1] floor (>= 0)
-- Reply: the counter after the call
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return cur
