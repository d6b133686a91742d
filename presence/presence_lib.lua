-- presence_lib.lua: shared prelude of every presence_*.lua script. Go
-- prepends it to each script before hashing (Scripts() returns the joined
-- source), so the helpers below exist in every presence script.
--
-- Common arguments of every presence_* script:
--   KEYS[1] presence:{u:<user>} hash
--   ARGV[1] DeviceTTL in ms
--   ARGV[2] dead node instances, space separated ("" when none)
--
-- Hash layout: 'status' (absent = online), 'seen' (public last seen, epoch
-- ms), 'd:<deviceId>' = '<lastActivityMs>|<instance>|<socketId>'.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- load reads the hash and splits devices into live (activity + ttl > now and
-- the node instance is not dead) and stale ones.
local function load(key, now, ttl, deadlist)
  local dead = {}
  for inst in string.gmatch(deadlist, '%S+') do dead[inst] = true end
  local p = {status = 'online', seen = 0, live = {}, nlive = 0, latest = 0,
             stale = {}, staleLatest = 0, nall = 0, allLatest = 0}
  local h = redis.call('HGETALL', key)
  for i = 1, #h, 2 do
    local f, v = h[i], h[i + 1]
    if f == 'status' then
      p.status = v
    elseif f == 'seen' then
      p.seen = tonumber(v) or 0
    elseif string.sub(f, 1, 2) == 'd:' then
      local at, inst = string.match(v, '^(%d+)|([^|]*)|')
      at = tonumber(at) or 0
      p.nall = p.nall + 1
      if at > p.allLatest then p.allLatest = at end
      if at + ttl > now and not dead[inst] then
        p.live[f] = at
        p.nlive = p.nlive + 1
        if at > p.latest then p.latest = at end
      else
        p.stale[#p.stale + 1] = f
        if at > p.staleLatest then p.staleLatest = at end
      end
    end
  end
  return p
end

local function relatest(p)
  p.latest = 0
  for _, at in pairs(p.live) do
    if at > p.latest then p.latest = at end
  end
end

-- view is the public presence: {online 0|1, status, lastSeen ms, devices}.
-- An invisible user looks offline and its device activity never shows.
local function view(p)
  if p.nlive > 0 and p.status ~= 'invisible' then
    return {1, p.status, p.latest, p.nlive}
  end
  local seen = p.seen
  if p.status ~= 'invisible' and p.staleLatest > seen then seen = p.staleLatest end
  return {0, 'offline', seen, 0}
end

local function setseen(key, p, at)
  if at > p.seen then
    p.seen = at
    redis.call('HSET', key, 'seen', at)
  end
end

-- prune deletes stale device fields; while visible, their last activity
-- becomes the public last seen.
local function prune(key, p)
  if #p.stale > 0 then
    redis.call('HDEL', key, unpack(p.stale))
    if p.status ~= 'invisible' then setseen(key, p, p.staleLatest) end
    p.stale = {}
    p.staleLatest = 0
  end
end

-- reply: before view (4), after view (4), index score (when the newest live
-- device goes stale, 0 when no device is live).
local function reply(before, after, p, ttl)
  local score = 0
  if p.nlive > 0 then score = p.latest + ttl end
  return {before[1], before[2], before[3], before[4],
          after[1], after[2], after[3], after[4], score}
end

