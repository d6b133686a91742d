-- friends_invalidate: drops a user's cached friend list after a write to the
-- store, leaving a short-lived "~stale" marker that friends_set refuses to
-- overwrite: a concurrent cache fill with the list read before the write
-- would otherwise cache stale data for the whole FriendsTTL.
-- KEYS[1] friends:{u:U}
-- ARGV[1] marker lifetime in ms
-- Reply: 1
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '~stale')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
