-- queue_kill: a leased job failed for good (out of attempts, or a permanent
-- provider error): it moves to the dead-letter list.
-- KEYS[1] leased  KEYS[2] jobs  KEYS[3] attempts  KEYS[4] dead
-- ARGV[1] id  ARGV[2] reason  ARGV[3] dead-letter entries kept
-- Reply: 1 when the job still existed
local rec = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if not rec then
  return 0
end
local t = redis.call('TIME')
local attempts = redis.call('HGET', KEYS[3], ARGV[1]) or '0'
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[1] .. '\n' .. t[1] .. '\n' .. attempts .. '\n' .. ARGV[2] .. '\n' .. rec)
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
return 1
