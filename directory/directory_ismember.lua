-- directory_ismember.lua: membership test that tells an unknown conversation
-- apart from a non-member.
-- KEYS[1] members:{c:<conv>}
-- ARGV[1] user id
-- Reply: 1 member, 0 not a member; error "not_found ..." for an unknown conversation.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('not_found conversation not found')
end
return redis.call('SISMEMBER', KEYS[1], ARGV[1])
