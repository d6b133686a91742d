-- lease_acquire.lua: takes a job's lease lock unless another holder has it.
-- KEYS[1] lock:<job> string: a holder's token, or "~done" after a round
--         (see lease_release.lua)
-- ARGV[1] token of this holder (unique per acquisition)
-- ARGV[2] lease ms
-- ARGV[3] "1" to also take a finished round's marker (a manual run), else ""
-- Reply: 1 taken, 0 held by another holder (or this round already ran)
local v = redis.call('GET', KEYS[1])
if v and not (ARGV[3] == '1' and v == '~done') then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
