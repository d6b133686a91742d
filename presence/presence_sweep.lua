-- presence_sweep.lua: prunes expired devices and devices of dead node
-- instances of one user (the Sweep job).
-- KEYS[1] presence:{u:<user>} hash
-- ARGV[1] DeviceTTL ms
-- ARGV[2] dead instances, space separated
-- ARGV[3] LastSeenTTL ms
-- Reply: see reply() in presence_lib.lua. "before" is the view as last
-- written (stale devices counted as live), so a user whose devices all went
-- stale without SetUserOffline shows as a change online -> offline.
local key, ttl = KEYS[1], tonumber(ARGV[1])
local now = now_ms()
local p = load(key, now, ttl, ARGV[2])
local before = view(p)
if #p.stale == 0 then
  return reply(before, before, p, ttl)
end
if p.nall > 0 and p.status ~= 'invisible' then
  before = {1, p.status, p.allLatest, p.nall}
end
prune(key, p)
if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[3]) end
return reply(before, view(p), p, ttl)
