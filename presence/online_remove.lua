-- online_remove.lua: removes index members that are known offline, unless a
-- write re-added them meanwhile (it raises the score, ZADD GT).
-- KEYS[1] online:users sorted set
-- ARGV[2i-1] member, ARGV[2i] the highest score at which it may be removed
-- Reply: number of members removed
local n = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[i + 1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
