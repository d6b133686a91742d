-- directory_setfriends.lua: replace a user's friend set.
-- KEYS[1] friendships:{u:<user>}
-- ARGV[1..n] friend user ids (may be empty)
-- Reply: number of friends stored.
redis.call('DEL', KEYS[1])
if #ARGV > 0 then
  redis.call('SADD', KEYS[1], unpack(ARGV))
end
return #ARGV
