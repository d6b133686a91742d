-- queue_recover: the sweep behind the workers: requeues jobs whose lease
-- expired and retries that are due, and reports the queue's sizes.
-- KEYS[1] leased  KEYS[2] retry  KEYS[3] jobs  KEYS[4] pending:high
-- KEYS[5] pending:normal  KEYS[6] dead
-- ARGV[1] limit per kind (0: move nothing, only report)
-- Reply: {requeued, forwarded, high, normal, leased, retry, dead, oldest enqueued ms (0 = none)}
local now = now_ms()
local requeued, forwarded = recover(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], now, tonumber(ARGV[1]))
local oldest = 0
for _, list in ipairs({KEYS[4], KEYS[5]}) do
  local id = redis.call('LINDEX', list, -1)
  if id then
    local rec = redis.call('HGET', KEYS[3], id)
    if rec then
      local a = string.find(rec, '\n', 1, true)
      local b = string.find(rec, '\n', a + 1, true)
      local at = tonumber(string.sub(rec, a + 1, b - 1))
      if oldest == 0 or at < oldest then
        oldest = at
      end
    end
  end
end
return {requeued, forwarded, redis.call('LLEN', KEYS[4]), redis.call('LLEN', KEYS[5]),
  redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('LLEN', KEYS[6]), oldest}
