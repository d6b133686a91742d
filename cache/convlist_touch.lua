-- convlist_touch: moves a conversation up a user's list. A list that is
-- not cached stays so: the next read fills it whole from the store, which
-- already holds this activity.
-- KEYS[1] convs:{u:U}  sorted set (convlist_page)
-- ARGV[1] TTL ms
-- ARGV[2] activity ms
-- ARGV[3] conversation id
-- Reply: 1 when the list is cached, else 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
