-- directory_cache.lua: replace the cached member set of a conversation
-- (cache-aside: filled from the store on a miss).
-- KEYS[1] members:{c:<conv>}   set of member user ids
-- ARGV[1] TTL in ms
-- ARGV[2..n] member user ids (at least one), or the single "~none" that
--            caches an unknown conversation as unknown
-- A set holding "~stale" was just invalidated (directory_invalidate.lua)
-- and is not refilled until that marker expires, so a reader that loaded
-- the members before a change cannot cache the old set.
-- Reply: number of members cached, -1 when refused.
if redis.call('SISMEMBER', KEYS[1], '~stale') == 1 then
  return -1
end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 1
