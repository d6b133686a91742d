-- lease_renew.lua: extends a lease lock while its holder still owns it.
-- KEYS[1] lock:<job> string (holder token)
-- ARGV[1] token of the holder
-- ARGV[2] lease ms
-- Reply: 1 renewed, 0 lost (expired, or taken by another holder)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
