-- presence_get.lua: reads a user's public presence (writes nothing).
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- Reply: {online 0|1, status, lastSeen ms, devices, live devices}; the
-- last element counts live devices whatever the status (an invisible user
-- is connected but not publicly online).
local p = load(KEYS[1], now_ms(), tonumber(ARGV[1]), ARGV[2])
local v = view(p)
v[5] = p.nlive
return v
