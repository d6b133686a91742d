-- session_sweep: removes the expired sessions of a user.
-- KEYS[1] sessions:{u:U}  hash, see session_create.lua for the value layout
-- (no ARGV)
-- Reply: number of sessions removed
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local removed = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = tonumber(string.match(all[i + 1], '^(%d+)|'))
  if e == nil or e <= now then
    redis.call('HDEL', KEYS[1], all[i])
    removed = removed + 1
  end
end
return removed
