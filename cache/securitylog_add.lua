-- securitylog_add: prepends an event to a user's security log.
-- KEYS[1] security_log:{u:U}  list of event JSON, newest first
-- ARGV[1] event JSON without "at", starting with '{'
-- ARGV[2] at, epoch ms (0 = Redis time)
-- ARGV[3] entries kept
-- ARGV[4] TTL in ms, refreshed on every add
-- Reply: the stored event JSON
local at = tonumber(ARGV[2])
if at == 0 then
  local t = redis.call('TIME')
  at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local v = string.format('{"at":%d,', at) .. string.sub(ARGV[1], 2)
redis.call('LPUSH', KEYS[1], v)
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return v
