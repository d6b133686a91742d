-- notification_add: prepends a notification to a user's list.
-- KEYS[1] notifications:{u:U}  list of notification JSON, newest first
-- ARGV[1] notification JSON
-- ARGV[2] entries kept
-- ARGV[3] TTL in ms, refreshed on every add
-- Reply: list length after trimming
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('LLEN', KEYS[1])
