-- friends_set: replaces a user's cached friend list.
-- KEYS[1] friends:{u:U}  set of friend ids plus a sentinel member that marks
--         "cached" so an empty list is a hit, not a miss
-- ARGV[1] TTL in ms
-- ARGV[2] sentinel member (never a valid id)
-- ARGV[3..] friend ids
-- ARGV[2] is "~cached"; a set holding "~stale" was just invalidated (see
-- friends_invalidate.lua) and is not refilled until that marker expires, so
-- a reader that loaded the list before a write cannot cache the old list.
-- Reply: number of members written (sentinel included), -1 when refused
if redis.call('SISMEMBER', KEYS[1], '~stale') == 1 then
  return -1
end
redis.call('DEL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[2])
-- unpack in chunks: Lua's C stack limits the number of arguments.
local i = 3
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('SADD', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])
