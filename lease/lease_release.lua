-- lease_release.lua: ends a lease: compare-and-delete with the holder's
-- token, so a holder whose lease lapsed cannot release its successor's.
-- KEYS[1] lock:<job> string (holder token)
-- ARGV[1] token of the holder
-- ARGV[2] ms left of the round: > 0 leaves the marker "~done" for that
--         long, so other nodes skip the rest of this round; 0 deletes
-- Reply: 1 released, 0 not held by this token any more
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local rest = tonumber(ARGV[2])
if rest > 0 then
  redis.call('SET', KEYS[1], '~done', 'PX', rest)
else
  redis.call('DEL', KEYS[1])
end
return 1
