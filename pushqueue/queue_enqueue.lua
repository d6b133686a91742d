-- queue_enqueue: adds push jobs, each at most once: a job id (notification
-- id + device id) that is queued, leased, waiting for a retry, or finished
-- within the dedupe window is not added again.
-- KEYS[1] jobs            hash id -> "<priority>\n<enqueued ms>\n<payload>"
-- KEYS[2] pending:high    list of ids (LPUSH in, RPOP out)
-- KEYS[3] pending:normal  list of ids
-- KEYS[4] done            sorted set id -> finished at (ms)
-- ARGV[1] dedupe window of finished ids, ms
-- ARGV[2..] triples: id, priority ("high" | "normal"), payload
-- Reply: the number of jobs added
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('%d', now - tonumber(ARGV[1])))
local added = 0
for i = 2, #ARGV, 3 do
  local id, prio = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[1], id) == 0 and not redis.call('ZSCORE', KEYS[4], id) then
    redis.call('HSET', KEYS[1], id, prio .. '\n' .. string.format('%d', now) .. '\n' .. ARGV[i + 2])
    if prio == 'high' then
      redis.call('LPUSH', KEYS[2], id)
    else
      redis.call('LPUSH', KEYS[3], id)
    end
    added = added + 1
  end
end
return added
