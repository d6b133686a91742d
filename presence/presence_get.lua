-- presence_get.lua: reads users' public presence (writes nothing). Any
-- number of users per call (luascript.PerKey: all of them on one Redis,
-- one per call on a Cluster), so a fan-out's lookup is one script run.
-- KEYS[i] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- Reply: per key {online 0|1, status, lastSeen ms, devices, live devices};
-- the last element counts live devices whatever the status (an invisible
-- user is connected but not publicly online).
local now, ttl = now_ms(), tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local p = load(KEYS[i], now, ttl, ARGV[2])
  local v = view(p)
  v[5] = p.nlive
  out[i] = v
end
return out
