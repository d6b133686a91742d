-- session_touch: records activity on a session and extends its expiry.
-- KEYS[1] sessions:{u:U}  hash, see session_create.lua for the value layout
-- ARGV[1] deviceId
-- ARGV[2] session TTL in ms
-- Reply: the stored value, or the error "not_found ..." when the session is
-- missing or expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  return redis.error_reply('not_found no such session')
end
local e, created, rest = string.match(v, '^(%d+)|(%d+)|%d+|(.*)$')
if e == nil or tonumber(e) <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return redis.error_reply('not_found session expired')
end
local exp = now + tonumber(ARGV[2])
local value = string.format('%d|%s|%d|', exp, created, now) .. rest
redis.call('HSET', KEYS[1], ARGV[1], value)
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 or now + pttl < exp then
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', exp))
end
return value
