-- seatkeeper pool: a pod turns a claim into a held seat (a fresh hello).
-- ARGV: pod_id, instance, sha256 hex of the seat token
-- Returns {status, reason, slot, epoch}: {'ok', '', slot, epoch} or
-- {'refused', 'not_registered'|'unknown'|'used'|'expired', -1, 0}.
local P = 'seatkeeper:pool:'
local pod = P .. 'pod:' .. ARGV[1]
local seats, claims = pod .. ':seats', pod .. ':claims'
local hash = ARGV[3]
if redis.call('HGET', pod, 'instance') ~= ARGV[2] then
  return {'refused', 'not_registered', -1, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', seats)
for i = 1, #all, 2 do
  local st, e, x, h = string.match(all[i + 1], '^(%a):(%d+):(%d+):(%x*)$')
  if h == hash then
    if st ~= 'c' then
      return {'refused', 'used', -1, 0}
    end
    if tonumber(x) <= now then
      redis.call('HDEL', seats, all[i])
      redis.call('ZREM', claims, all[i])
      redis.call('HINCRBY', pod, 'lapsed', 1)
      return {'refused', 'expired', -1, 0}
    end
    redis.call('HSET', seats, all[i], 'h:' .. e .. ':' .. now .. ':' .. hash)
    redis.call('ZREM', claims, all[i])
    return {'ok', '', tonumber(all[i]), tonumber(e)}
  end
end
return {'refused', 'unknown', -1, 0}
