-- presence_get.lua: reads a user's public presence (writes nothing).
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- Reply: {online 0|1, status, lastSeen ms, devices}
local p = load(KEYS[1], now_ms(), tonumber(ARGV[1]), ARGV[2])
return view(p)
