-- directory_create.lua: create a conversation with its members.
-- KEYS[1] members:{c:<conv>}   set of member user ids
-- ARGV[1..n] member user ids (validated, deduplicated by the caller)
-- Reply: 1 when created; error "conflict ..." when the conversation exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('conflict conversation already exists')
end
redis.call('SADD', KEYS[1], unpack(ARGV))
return 1
