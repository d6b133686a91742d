-- queue_lib: prepended to queue_claim and queue_recover.

-- requeue puts ids back at the head of their priority's pending list (they
-- are served next) and returns how many still had a job record.
local function requeue(jobs, high, normal, ids)
  local n = 0
  for _, id in ipairs(ids) do
    local rec = redis.call('HGET', jobs, id)
    if rec then
      if string.sub(rec, 1, 5) == 'high\n' then
        redis.call('RPUSH', high, id)
      else
        redis.call('RPUSH', normal, id)
      end
      n = n + 1
    end
  end
  return n
end

-- recover requeues up to limit jobs whose lease expired (their worker died
-- or hung) and up to limit retries that are due; returns both counts.
local function recover(leased, retry, jobs, high, normal, now, limit)
  local bound = string.format('%d', now)
  local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', bound, 'LIMIT', 0, limit)
  if #expired > 0 then
    redis.call('ZREM', leased, unpack(expired))
  end
  local due = redis.call('ZRANGEBYSCORE', retry, '-inf', bound, 'LIMIT', 0, limit)
  if #due > 0 then
    redis.call('ZREM', retry, unpack(due))
  end
  return requeue(jobs, high, normal, expired), requeue(jobs, high, normal, due)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
