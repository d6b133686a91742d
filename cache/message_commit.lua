-- message_commit: the second step of a durable send, after the store
-- write: the message leaves pending for ready, and every ready message
-- below the lowest pending seq is cached and published in seq order.
-- KEYS[1] messages:{c:C}  sorted set, score = seq, member = message JSON
-- KEYS[2] seq:{c:C}       sequence counter
-- KEYS[3] dedupe:{c:C}    sorted set, member "senderId:clientMessageId", score = seq
-- KEYS[4] restored:{c:C}  highest seq a Redis that lost its data may have
--                         reserved (message_seqfloor); absent = none
-- KEYS[5] pending:{c:C}   sorted set, score = seq, member = "seq:deadline ms"
-- KEYS[6] ready:{c:C}     sorted set, score = seq, member = publish record JSON
-- KEYS[7] summary:{c:C}   hash lastSeq, msgSeq, msg (message_lib summarize)
-- KEYS[8] counted:{c:C}   sorted set of counted seqs
-- KEYS[9] reads:{c:C}     hash userId -> read seq
-- ARGV[1] seq of the stored message
-- ARGV[2] publish record JSON {"q","m","f","p","s","c","u","n"} (see message_lib)
-- ARGV[3] TTL in ms of KEYS[1] and KEYS[3]
-- ARGV[4] messages kept (cap of KEYS[1])
-- ARGV[5] dedupe entries kept (cap of KEYS[3])
-- ARGV[6] counted seqs kept (cap of KEYS[8])
-- Reply: {status, message JSON, settled, lowest pending seq, its deadline, now ms}
--   status 0: committed (published once settled >= seq);
--   status 1: already published before this call (message JSON = the cached
--   copy, or ARGV[2]'s when it left the cache).
local k = {msgs = KEYS[1], seq = KEYS[2], ids = KEYS[3], restored = KEYS[4], pending = KEYS[5], ready = KEYS[6],
  summary = KEYS[7], counted = KEYS[8], reads = KEYS[9], unreadKeep = tonumber(ARGV[6])}
local seq = ARGV[1]
local ttl, keep, dedupeKeep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local rec = cjson.decode(ARGV[2])
local status = 0
local member = rec.m

if redis.call('ZCOUNT', k.pending, seq, seq) > 0 then
  redis.call('ZREMRANGEBYSCORE', k.pending, seq, seq)
  if redis.call('ZCOUNT', k.ready, seq, seq) == 0 then
    if redis.call('ZCOUNT', k.pending, '-inf', '(' .. seq) == 0 and
        redis.call('ZCOUNT', k.ready, '-inf', '(' .. seq) == 0 then
      -- Every lower seq is settled: publish now, in order, without the
      -- round through ready (advance then publishes what waited on it).
      publish_record(k, rec, now, ttl, keep, dedupeKeep)
    else
      redis.call('ZADD', k.ready, seq, ARGV[2])
    end
  end
elseif redis.call('ZCOUNT', k.ready, seq, seq) == 0 then
  -- Neither pending nor ready: published before (a resend of a settled
  -- message), or Redis lost the reservation. A seq reserved in this Redis
  -- (above KEYS[4]) was settled here, and a stored message's seq is never
  -- skipped, so it was published. At or below KEYS[4], publish only what
  -- the cache and the dedupe index do not show as published.
  local cached = redis.call('ZRANGEBYSCORE', k.msgs, seq, seq)
  local published = #cached > 0
  if published then
    member = cached[1]
  elseif tonumber(seq) > tonumber(redis.call('GET', k.restored) or '0') then
    published = true
  elseif rec.f ~= '' then
    published = tonumber(redis.call('ZSCORE', k.ids, rec.f) or '0') == tonumber(seq)
  end
  if published then
    status = 1
  else
    publish_record(k, rec, now, ttl, keep, dedupeKeep)
  end
end
local settled, hseq, hdeadline = advance(k, now, ttl, keep, dedupeKeep)
return {status, member, settled, hseq, hdeadline, now}
