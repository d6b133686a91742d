-- convlist_fill: fills a user's conversation list from the store (each
-- score raised only, so an activity written meanwhile wins) and marks it
-- filled.
-- KEYS[1] convs:{u:U}  sorted set (convlist_page)
-- ARGV[1] TTL ms
-- ARGV    then score, conversation id pairs
-- Reply: "OK"
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i], ARGV[i + 1])
end
redis.call('ZADD', KEYS[1], '-1', '~')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'OK'
