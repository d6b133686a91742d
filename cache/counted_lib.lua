-- counted_lib: the counted seqs of a conversation (counted:{c:C}, the
-- unread badges; docs/redis-keys.md "Conversation list"), prepended to
-- the scripts that write or count them.
--
-- The set is stored as runs of consecutive counted seqs: member = the
-- run's first seq, score = its last seq. A conversation's messages are
-- mostly consecutive counted seqs, so 1,000 counted seqs are a handful of
-- runs (a listpack of bytes) rather than 1,000 skiplist entries (~94 KB).
-- Member "~" holds the number of seqs kept, negated as its score (runs
-- have scores >= 1, so range reads from 0 up never meet it). An
-- old-format entry (member = score = seq) is a run of one.

-- count_seq adds seq s. Past keep + 64 seqs it trims back to the newest
-- keep (every 64th add at most, so the walk is amortised); counts stay
-- exact up to keep (unread_count saturates there).
local function count_seq(kCounted, s, keep)
  local first, last = s, s
  -- The first run ending at s - 1 or later, and the one after it.
  local r = redis.call('ZRANGEBYSCORE', kCounted, s - 1, '+inf', 'LIMIT', 0, 2, 'WITHSCORES')
  if #r > 0 then
    local a, e = tonumber(r[1]), tonumber(r[2])
    if a <= s and e >= s then
      return
    end
    if e == s - 1 then
      first = a
      if #r > 2 and tonumber(r[3]) == s + 1 then
        last = tonumber(r[4])
        redis.call('ZREM', kCounted, r[3])
      end
    elseif a == s + 1 then
      last = e
      redis.call('ZREM', kCounted, r[1])
    end
  end
  redis.call('ZADD', kCounted, string.format('%d', last), string.format('%d', first))
  local kept = -tonumber(redis.call('ZINCRBY', kCounted, -1, '~'))
  if kept <= keep + 64 then
    return
  end
  -- Walk from the newest run until keep seqs are covered; cut there.
  local runs = redis.call('ZREVRANGEBYSCORE', kCounted, '+inf', 1, 'WITHSCORES')
  local sum = 0
  for i = 1, #runs, 2 do
    local a, e = tonumber(runs[i]), tonumber(runs[i + 1])
    if sum + (e - a + 1) >= keep then
      redis.call('ZREMRANGEBYSCORE', kCounted, 1, '(' .. runs[i])
      local cut = e - (keep - sum) + 1
      if cut > a then
        redis.call('ZREM', kCounted, runs[i])
        redis.call('ZADD', kCounted, runs[i + 1], string.format('%d', cut))
      end
      sum = keep
      break
    end
    sum = sum + (e - a + 1)
  end
  redis.call('ZADD', kCounted, -sum, '~')
end

-- unread_count is the number of counted seqs above read, at most keep.
local function unread_count(kCounted, read, keep)
  local runs = redis.call('ZRANGEBYSCORE', kCounted, '(' .. string.format('%d', read), '+inf', 'WITHSCORES')
  local n = 0
  for i = 1, #runs, 2 do
    local a, e = tonumber(runs[i]), tonumber(runs[i + 1])
    if a <= read then
      a = read + 1
    end
    n = n + e - a + 1
    if n >= keep then
      return keep
    end
  end
  return n
end
