-- message_lib: functions shared by message_add, message_reserve,
-- message_commit and message_settle, prepended to each after counted_lib
-- (Redis 7.0's EVAL has no libraries).
-- docs/delivery.md explains the pending/ready/settled mechanism.

-- now_ms is Redis time in epoch ms, the one clock every node agrees on.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The dedupe index (KEYS dedupe:{c:C}, docs/redis-keys.md "Dedupe window")
-- maps each cached message's "senderId:clientMessageId" to its seq and
-- keeps the newest dedupeKeep of them (by seq): a resend is answered with
-- the live cached copy, and one whose original left the cache goes to the
-- store, which refuses a second copy.

-- cached_original returns the cached message a dedupe field names, or nil
-- when it is not cached (never sent, or it left the cache's window). The
-- cached copy must carry that sender and clientMessageId: an index entry
-- can outlive the message it named (a message replaced under its seq).
local function cached_original(kMsgs, kIDs, field)
  local s = redis.call('ZSCORE', kIDs, field)
  if not s then
    return nil
  end
  local cached = redis.call('ZRANGEBYSCORE', kMsgs, s, s)
  if #cached == 0 then
    return nil
  end
  local sep = string.find(field, ':', 1, true)
  local m = cached[1]
  if string.find(m, '"senderId":"' .. string.sub(field, 1, sep - 1) .. '"', 1, true) and
      string.find(m, '"clientMessageId":"' .. string.sub(field, sep + 1) .. '"', 1, true) then
    return m
  end
  return nil
end

-- cache_publish caches member under seq, remembers its dedupe field and
-- publishes seq .. NUL .. prefix .. member .. suffix to channel (SPUBLISH
-- when sharded): one atomic step, so a cached message has always been
-- published.
local function cache_publish(kMsgs, kIDs, seq, member, field, ttl, keep, dedupeKeep, prefix, suffix, channel, sharded)
  -- A message replaces whatever was cached under its seq.
  local score = string.format('%d', seq)
  redis.call('ZREMRANGEBYSCORE', kMsgs, score, score)
  redis.call('ZADD', kMsgs, score, member)
  redis.call('ZREMRANGEBYRANK', kMsgs, 0, -(keep + 1))
  redis.call('PEXPIRE', kMsgs, ttl)
  if field ~= '' then
    redis.call('ZADD', kIDs, score, field)
    redis.call('ZREMRANGEBYRANK', kIDs, 0, -(dedupeKeep + 1))
    redis.call('PEXPIRE', kIDs, ttl)
  end
  if type(channel) == 'string' and channel ~= '' then
    local cmd = 'PUBLISH'
    if sharded == true then
      cmd = 'SPUBLISH'
    end
    redis.call(cmd, channel, score .. '\0' .. prefix .. member .. suffix)
  end
end

-- summarize keeps the conversation list's view of a published entry, in
-- the same step, so it follows publication order exactly: the last seq,
-- the last counted message, the counted seqs (unread = counted seqs above
-- a read position) and the sender's read position, raised to its own
-- counted message (a member has read what it sent, so unread never counts it).
-- cache/reads.go and docs/redis-keys.md ("Conversation list").
local function summarize(k, rec)
  local seq = tonumber(rec.q)
  local last = tonumber(redis.call('HGET', k.summary, 'lastSeq') or '0')
  if seq > last then
    redis.call('HSET', k.summary, 'lastSeq', seq)
  end
  if rec.n == true then
    if seq > tonumber(redis.call('HGET', k.summary, 'msgSeq') or '0') then
      redis.call('HSET', k.summary, 'msgSeq', seq, 'msg', rec.m)
    end
    count_seq(k.counted, seq, k.unreadKeep)
    if type(rec.u) == 'string' and rec.u ~= '' then
      if tonumber(redis.call('HGET', k.reads, rec.u) or '0') < seq then
        redis.call('HSET', k.reads, rec.u, seq)
      end
    end
  end
end

-- apply_entry updates the cached copy of a timeline entry's target (edit,
-- delete, reaction) exactly as chatstate.Message.Apply does. Records are
-- published in seq order, so the cached copy ends in the state of applying
-- every entry in seq order: the state the stores reach in any order. A
-- target no longer cached is left to the store. cjson re-encodes numbers
-- with 14 significant digits: exact for seqs below 10^14 and epoch-ms
-- times until the year 5138.
local function apply_entry(kMsgs, entryJSON)
  local e = cjson.decode(entryJSON)
  local score = string.format('%d', e.targetSeq)
  local cur = redis.call('ZRANGEBYSCORE', kMsgs, score, score)
  if #cur == 0 then
    return
  end
  local o = cjson.decode(cur[1])
  if o.id ~= e.target or o.deleted then
    return
  end
  if e.type == 'edit' then
    o.content = e.content
    o.editedAt = e.createdAt
  elseif e.type == 'delete' then
    o.deleted = true
    o.content = ''
    o.editedAt = nil
    o.reactions = nil
  elseif e.type == 'reaction' then
    local r = o.reactions or {}
    local users = r[e.content] or {}
    local kept = {}
    for i = 1, #users do
      if users[i] ~= e.senderId then
        kept[#kept + 1] = users[i]
      end
    end
    if not e.remove then
      kept[#kept + 1] = e.senderId
    end
    if #kept == 0 then
      r[e.content] = nil
    else
      r[e.content] = kept
    end
    if next(r) == nil then
      o.reactions = nil
    else
      o.reactions = r
    end
  else
    return
  end
  redis.call('ZREMRANGEBYSCORE', kMsgs, score, score)
  redis.call('ZADD', kMsgs, score, cjson.encode(o))
end

-- publish_record publishes one ready record: {"q": seq, "m": member JSON,
-- "f": dedupe field, "p"/"s": payload prefix/suffix, "c": channel, "x":
-- true to SPUBLISH it, "a": true for a timeline entry to apply to its
-- cached target, "u": sender, "n": counted (summarize)}.
local function publish_record(k, rec, now, ttl, keep, dedupeKeep)
  if rec.a then
    apply_entry(k.msgs, rec.m)
  end
  cache_publish(k.msgs, k.ids, rec.q, rec.m, rec.f, ttl, keep, dedupeKeep, rec.p, rec.s, rec.c, rec.x)
  summarize(k, rec)
end

-- advance publishes, in seq order, every ready message below the lowest
-- pending seq, then returns the settled watermark (every seq up to it is
-- stored and published, or skipped; -1 when the counter is missing), the
-- lowest pending seq (0 if none) and its settle deadline.
local function advance(k, now, ttl, keep, dedupeKeep)
  local head = redis.call('ZRANGE', k.pending, 0, 0, 'WITHSCORES')
  local hseq, hdeadline, bound = 0, 0, '+inf'
  if #head > 0 then
    hseq = tonumber(head[2])
    local sep = string.find(head[1], ':', 1, true)
    hdeadline = tonumber(string.sub(head[1], sep + 1))
    bound = '(' .. head[2]
  end
  local due = redis.call('ZRANGEBYSCORE', k.ready, '-inf', bound, 'LIMIT', 0, 256)
  for i = 1, #due do
    publish_record(k, cjson.decode(due[i]), now, ttl, keep, dedupeKeep)
  end
  if #due > 0 then
    redis.call('ZREM', k.ready, unpack(due))
  end
  local counter = redis.call('GET', k.seq)
  if not counter then
    return -1, hseq, hdeadline
  end
  local settled = tonumber(counter)
  if hseq > 0 and hseq - 1 < settled then
    settled = hseq - 1
  end
  local low = redis.call('ZRANGE', k.ready, 0, 0, 'WITHSCORES')
  if #low > 0 and tonumber(low[2]) - 1 < settled then
    settled = tonumber(low[2]) - 1
  end
  return settled, hseq, hdeadline
end
