-- presence_touch.lua: refreshes a live device's activity (and so its TTL).
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- ARGV[3] LastSeenTTL ms
-- ARGV[4] deviceId
-- Reply: index score (new activity + DeviceTTL), or the error
-- "not_found ..." when the device is not live (expired, its node died, or
-- never registered): the gateway must call SetUserOnline again.
local key, ttl = KEYS[1], tonumber(ARGV[1])
local now = now_ms()
local p = load(key, now, ttl, ARGV[2])
prune(key, p)
local field = 'd:' .. ARGV[4]
if not p.live[field] then
  return redis.error_reply('not_found device is not online')
end
local v = redis.call('HGET', key, field)
redis.call('HSET', key, field, now .. string.match(v, '^%d+(|.*)$'))
redis.call('PEXPIRE', key, ARGV[3])
return now + ttl
