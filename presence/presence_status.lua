-- presence_status.lua: sets the chosen status (kept across reconnects).
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- ARGV[3] LastSeenTTL ms
-- ARGV[4] status: online | away | busy | invisible (validated by Go)
-- Reply: see reply() in presence_lib.lua.
local key, ttl = KEYS[1], tonumber(ARGV[1])
local now = now_ms()
local p = load(key, now, ttl, ARGV[2])
local before = view(p)
prune(key, p)
local new = ARGV[4]
-- Crossing the invisibility line while connected: the public last seen
-- becomes now (the moment the user stopped, or started, being visible), so
-- activity while invisible never leaks through lastSeen.
if p.nlive > 0 and ((p.status == 'invisible') ~= (new == 'invisible')) then
  setseen(key, p, now)
end
if new == 'online' then
  redis.call('HDEL', key, 'status')
else
  redis.call('HSET', key, 'status', new)
end
p.status = new
if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[3]) end
return reply(before, view(p), p, ttl)
