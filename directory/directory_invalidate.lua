-- directory_invalidate: drops a conversation's cached member set after a
-- membership change in the store, leaving a short-lived "~stale" marker
-- that directory_cache refuses to overwrite: a concurrent cache fill with
-- the members read before the change would otherwise cache the old set
-- for the whole MembersTTL (the same guard as friends_invalidate).
-- KEYS[1] members:{c:C}
-- ARGV[1] marker lifetime in ms
-- Reply: 1
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], '~stale')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
