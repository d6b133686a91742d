-- convlist_touch: moves a conversation up users' lists. A list that is
-- not cached stays so: the next read fills it whole from the store, which
-- already holds this activity. Any number of lists per call
-- (luascript.PerKey: all of them on one Redis, one per call on a Cluster).
-- KEYS[i] convs:{u:U}  sorted set (convlist_page)
-- ARGV[1] TTL ms
-- ARGV[2] activity ms
-- ARGV[3] conversation id
-- Reply: per key, 1 when the list is cached, else 0
local out = {}
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    out[i] = 0
  else
    redis.call('ZADD', KEYS[i], 'GT', ARGV[2], ARGV[3])
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  end
end
return out
