-- device_remember: records a login from a device and says whether the user
-- had not logged in from it within the window (a new device).
-- KEYS[1] known_devices:{u:U}  hash deviceId -> last login (ms)
-- ARGV[1] deviceId
-- ARGV[2] window in ms: the key's TTL, refreshed on every login
-- ARGV[3] devices kept: beyond it the least recently seen is forgotten
-- Reply: 1 for a new device, 0 for a known one
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local isNew = redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now))
if isNew == 1 and redis.call('HLEN', KEYS[1]) > tonumber(ARGV[3]) then
  local all = redis.call('HGETALL', KEYS[1])
  local oldest, at = nil, nil
  for i = 1, #all, 2 do
    local v = tonumber(all[i + 1])
    if all[i] ~= ARGV[1] and (at == nil or v < at) then
      oldest, at = all[i], v
    end
  end
  if oldest then
    redis.call('HDEL', KEYS[1], oldest)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return isNew
