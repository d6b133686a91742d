-- queue_claim: leases up to n jobs, every high-priority job before any
-- normal one. Expired leases and due retries are requeued first (a bounded
-- batch), so a dead worker's job returns once its lease ends.
-- KEYS[1] pending:high  KEYS[2] pending:normal  KEYS[3] leased (id -> lease end ms)
-- KEYS[4] jobs          KEYS[5] attempts (id -> claims)  KEYS[6] retry (id -> due ms)
-- ARGV[1] lease ms  ARGV[2] n
-- Reply: flat triples {id, attempt (1 = first claim), record, ...}
local now = now_ms()
recover(KEYS[3], KEYS[6], KEYS[4], KEYS[1], KEYS[2], now, 64)
local out = {}
local lease = string.format('%d', now + tonumber(ARGV[1]))
local n = tonumber(ARGV[2])
while #out < 3 * n do
  local id = redis.call('RPOP', KEYS[1])
  if not id then
    id = redis.call('RPOP', KEYS[2])
  end
  if not id then
    break
  end
  local rec = redis.call('HGET', KEYS[4], id)
  if rec then
    redis.call('ZADD', KEYS[3], lease, id)
    local attempt = redis.call('HINCRBY', KEYS[5], id, 1)
    out[#out + 1] = id
    out[#out + 1] = attempt
    out[#out + 1] = rec
  end
end
return out
