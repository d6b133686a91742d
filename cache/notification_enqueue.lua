-- notification_enqueue: appends a notification to a global priority queue.
-- KEYS[1] notification_queue:<priority>  list, oldest first (consumers LPOP)
-- ARGV[1] notification JSON
-- ARGV[2] queue capacity: beyond it the oldest entries are dropped
-- Reply: number of entries dropped
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
local max = tonumber(ARGV[2])
if n > max then
  redis.call('LTRIM', KEYS[1], n - max, -1)
  return n - max
end
return 0
