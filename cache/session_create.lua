-- session_create: creates (or replaces) one device session of a user.
-- KEYS[1] sessions:{u:U}  hash, field = deviceId,
--         value = "<expiresAt>|<createdAt>|<lastActivity>|<session JSON without those three>"
--         (epoch ms); the key's expiry is the latest expiresAt of its fields.
-- ARGV[1] deviceId
-- ARGV[2] session JSON without createdAt, lastActivity, expiresAt, starting with '{'
-- ARGV[3] session TTL in ms
-- ARGV[4] sessions kept per user: beyond it the least recently active is evicted
-- Reply: the stored value
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[3])
local max = tonumber(ARGV[4])

-- Expired fields go first; HEXPIRE (Redis 7.4) is not available.
local all = redis.call('HGETALL', KEYS[1])
local live, latest = 0, exp
local lruField, lruAt = nil, nil
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local e, _, last = string.match(v, '^(%d+)|(%d+)|(%d+)|')
  e, last = tonumber(e), tonumber(last)
  if e == nil or e <= now then
    redis.call('HDEL', KEYS[1], f)
  elseif f ~= ARGV[1] then
    live = live + 1
    if e > latest then latest = e end
    if lruAt == nil or last < lruAt then lruField, lruAt = f, last end
  end
end
if live >= max and lruField then
  redis.call('HDEL', KEYS[1], lruField)
end

local value = string.format('%d|%d|%d|', exp, now, now) .. ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('PEXPIREAT', KEYS[1], string.format('%d', latest))
return value
