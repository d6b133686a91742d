-- presence_offline.lua: removes a device (socket disconnected / logout).
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- ARGV[3] LastSeenTTL ms
-- ARGV[4] deviceId
-- ARGV[5] socketId or "": when set, the device is removed only if it is
--         still registered with this socket (a late disconnect of an old
--         socket must not remove the device's newer connection)
-- Reply: see reply() in presence_lib.lua, then kept: 1 when the device stays
-- registered with another socket (its newer connection), else 0.
local key, ttl = KEYS[1], tonumber(ARGV[1])
local now = now_ms()
local p = load(key, now, ttl, ARGV[2])
local before = view(p)
prune(key, p)
local field = 'd:' .. ARGV[4]
if p.live[field] then
  local remove = true
  if ARGV[5] ~= '' then
    local v = redis.call('HGET', key, field)
    remove = string.match(v, '|([^|]*)$') == ARGV[5]
  end
  if remove then
    redis.call('HDEL', key, field)
    p.live[field] = nil
    p.nlive = p.nlive - 1
    relatest(p)
    if p.status ~= 'invisible' then setseen(key, p, now) end
  end
end
redis.call('PEXPIRE', key, ARGV[3])
local r = reply(before, view(p), p, ttl)
r[#r + 1] = p.live[field] and 1 or 0
return r
