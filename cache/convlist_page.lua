-- convlist_page: one page of a user's conversations, most recent activity
-- first, after a cursor. Equal scores come in reverse id order (ZREVRANGE),
-- so the cursor (score, id) resumes exactly; only the ties at the cursor's
-- score are read twice.
-- KEYS[1] convs:{u:U}  sorted set, score = last activity ms, member =
--                      conversation id; "~" at -1 marks it filled
-- ARGV[1] page size
-- ARGV[2] cursor score ('' = from the top)
-- ARGV[3] cursor id
-- Reply: {-1} not filled from the store; else {more (0/1), id, score, ...}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local limit = tonumber(ARGV[1])
local max, cs, cid = '+inf', nil, ARGV[3]
if ARGV[2] ~= '' then
  max, cs = ARGV[2], tonumber(ARGV[2])
end
local out, n, offset = {0}, 0, 0
while true do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '0', 'WITHSCORES', 'LIMIT', offset, limit + 1)
  if #batch == 0 then
    break
  end
  for i = 1, #batch, 2 do
    local id, score = batch[i], tonumber(batch[i + 1])
    if cs == nil or score < cs or id < cid then
      if n == limit then
        out[1] = 1
        return out
      end
      out[#out + 1] = id
      out[#out + 1] = batch[i + 1]
      n = n + 1
    end
  end
  offset = offset + #batch / 2
end
return out
