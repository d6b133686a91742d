-- queue_retry: a leased job failed in a way worth retrying: it waits until
-- its due time, then a claim (or the sweep) requeues it.
-- KEYS[1] leased  KEYS[2] retry  KEYS[3] jobs
-- ARGV[1] id  ARGV[2] delay ms
-- Reply: 1 when the job still existed
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
return 1
