-- session_read: returns live sessions of a user, dropping expired ones.
-- KEYS[1] sessions:{u:U}  hash, see session_create.lua for the value layout
-- ARGV[1] deviceId, or "" for all devices
-- Reply: array of stored values of live sessions (empty when none)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(f, v)
  local e = tonumber(string.match(v, '^(%d+)|'))
  if e == nil or e <= now then
    redis.call('HDEL', KEYS[1], f)
    return false
  end
  return true
end
if ARGV[1] ~= '' then
  local v = redis.call('HGET', KEYS[1], ARGV[1])
  if v and live(ARGV[1], v) then
    return {v}
  end
  return {}
end
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if live(all[i], all[i + 1]) then
    out[#out + 1] = all[i + 1]
  end
end
return out
