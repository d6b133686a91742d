-- message_settle: moves a conversation's settled watermark: optionally
-- skips one pending seq for good (its send failed and the store holds a
-- skip marker, or its store write was refused), then publishes every ready
-- message below the lowest pending seq. Waiting senders and syncs call it.
-- KEYS[1..9] as message_commit (messages, seq, dedupe, restored, pending,
--   ready, summary, counted, reads)
-- ARGV[1] seq to skip (0 = none)
-- ARGV[2] TTL in ms of KEYS[1] and KEYS[3]
-- ARGV[3] messages kept (cap of KEYS[1])
-- ARGV[4] dedupe entries kept (cap of KEYS[3])
-- ARGV[5] counted seqs kept (cap of KEYS[8])
-- Reply: {settled (-1 = counter missing), lowest pending seq (0 = none), its deadline, now ms}
local k = {msgs = KEYS[1], seq = KEYS[2], ids = KEYS[3], restored = KEYS[4], pending = KEYS[5], ready = KEYS[6],
  summary = KEYS[7], counted = KEYS[8], reads = KEYS[9], unreadKeep = tonumber(ARGV[5])}
if ARGV[1] ~= '0' then
  redis.call('ZREMRANGEBYSCORE', k.pending, ARGV[1], ARGV[1])
end
local now = now_ms()
local settled, hseq, hdeadline = advance(k, now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {settled, hseq, hdeadline, now}
