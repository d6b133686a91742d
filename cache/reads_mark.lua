-- reads_mark: raises a member's read position (never above the last
-- published seq, never down) and decides whether a receipt may go now:
-- at most one per member per conversation per interval, across nodes.
-- With seq 0 it only flushes: a receipt held back by the interval goes
-- once the interval has passed (the caller's timer).
-- KEYS[1] reads:{c:C}    hash userId -> seq, "e:<user>" last seq sent in a
--                        receipt, "n:<user>" next receipt allowed at (ms),
--                        "~" = filled from the store
-- KEYS[2] summary:{c:C}  hash lastSeq, ... (message_lib summarize)
-- ARGV[1] userId
-- ARGV[2] seq read (0 = flush only)
-- ARGV[3] receipt interval ms
-- Reply: {-1} reads not filled from the store yet; {-2} summary missing
--   (Redis lost it); else {read seq, seq to send in a receipt now (0 =
--   none), ms until a held-back receipt may go (0 = none held), 1 when
--   this call raised the position else 0}.
if redis.call('HEXISTS', KEYS[1], '~') == 0 then
  return {-1}
end
local last = redis.call('HGET', KEYS[2], 'lastSeq')
if not last then
  return {-2}
end
last = tonumber(last)
local user = ARGV[1]
local cur = tonumber(redis.call('HGET', KEYS[1], user) or '0')
local want = tonumber(ARGV[2])
if want > last then
  want = last
end
local raised = 0
if want > cur then
  redis.call('HSET', KEYS[1], user, want)
  cur, raised = want, 1
end
if cur <= tonumber(redis.call('HGET', KEYS[1], 'e:' .. user) or '0') then
  return {cur, 0, 0, raised}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nextAt = tonumber(redis.call('HGET', KEYS[1], 'n:' .. user) or '0')
if now >= nextAt then
  redis.call('HSET', KEYS[1], 'e:' .. user, cur, 'n:' .. user, now + tonumber(ARGV[3]))
  return {cur, cur, 0, raised}
end
return {cur, 0, nextAt - now, raised}
