-- reads_fill: merges read positions loaded from the store into the
-- conversation's hash (each field raised, never lowered) and marks it
-- filled, so positions written meanwhile in Redis are kept.
-- KEYS[1] reads:{c:C}  hash userId -> seq (reads_mark)
-- ARGV    userId, seq pairs
-- Reply: "OK"
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSET', KEYS[1], '~', '1')
return 'OK'
