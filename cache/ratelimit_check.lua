-- ratelimit_check: exact sliding-window rate limit; a denied attempt is not counted.
-- KEYS[1] rate_limit:{u:U}:<action>  sorted set of hits, score = Redis time in µs,
--         member = "<µs>-<nonce>" (unique even for hits in the same µs)
-- ARGV[1] limit (> 0): hits allowed per window
-- ARGV[2] window in µs (> 0)
-- ARGV[3] nonce, unique per call
-- Reply: {allowed (0|1), remaining, resetAt µs, retryAfter µs}
--   resetAt: when the oldest counted hit leaves the window (now when none)
--   retryAfter: 0 when allowed, else until enough hits left for one more
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
-- A hit at s counts while now < s + win.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - win))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  local nowStr = string.format('%d', now)
  redis.call('ZADD', KEYS[1], nowStr, nowStr .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(win / 1000))
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, limit - count - 1, tonumber(oldest[2]) + win, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
-- count - limit + 1 hits must leave; the last of them has rank count - limit.
local blocker = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + win, tonumber(blocker[2]) + win - now}
