-- presence_online.lua: registers (or re-registers) a device as connected.
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- ARGV[3] LastSeenTTL ms (PEXPIRE of the hash)
-- ARGV[4] deviceId
-- ARGV[5] node instance id
-- ARGV[6] socketId
-- ARGV[7] MaxDevices; a new device beyond it evicts the least active one
-- Reply: see reply() in presence_lib.lua.
local key, ttl = KEYS[1], tonumber(ARGV[1])
local now = now_ms()
local p = load(key, now, ttl, ARGV[2])
local before = view(p)
prune(key, p)
local field = 'd:' .. ARGV[4]
if not p.live[field] then
  local max = tonumber(ARGV[7])
  while p.nlive >= max do
    local of, oat = nil, nil
    for f, at in pairs(p.live) do
      if oat == nil or at < oat or (at == oat and f < of) then of, oat = f, at end
    end
    redis.call('HDEL', key, of)
    p.live[of] = nil
    p.nlive = p.nlive - 1
  end
  p.nlive = p.nlive + 1
end
p.live[field] = now
p.latest = now
redis.call('HSET', key, field, now .. '|' .. ARGV[5] .. '|' .. ARGV[6])
redis.call('PEXPIRE', key, ARGV[3])
return reply(before, view(p), p, ttl)
