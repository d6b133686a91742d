-- node_list.lua: lists the live gateway node instances with the connection
-- count of their last heartbeat.
-- KEYS[1] nodes sorted set (member instance id, score last heartbeat ms)
-- KEYS[2] nodeinfo hash (field instance id, value "<connections>|<heartbeat ms>")
-- ARGV[1] NodeTimeout ms: an instance whose heartbeat is older is dead
-- ARGV[2] max instances to return
-- Reply: {now ms, instance, heartbeat ms, info or false, ...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {now}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = live[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i])
end
return out
