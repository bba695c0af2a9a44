-- seatkeeper pool: claim one free seat on some live pod, atomically.
--
--   EVALSHA <sha1 of this script> 0 <lowercase hex SHA-256 of the seat token>
--
-- Returns a JSON string, either
--   {"pod_id":"...","url":"...","expires_in_ms":30000,"epoch":42,"slot":0}
-- or
--   {"error":"no_free_seat"}
-- The caller keeps the token itself and hands it to the user; Redis only
-- ever sees its hash.
local P = 'seatkeeper:pool:'
local hash = ARGV[1]
if type(hash) ~= 'string' or #hash ~= 64 or not string.match(hash, '^[0-9a-f]+$') then
  return redis.error_reply('ERR seat token hash must be 64 lowercase hex digits')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local best, best_free, best_last
for _, id in ipairs(redis.call('SMEMBERS', P .. 'pods')) do
  local pod = P .. 'pod:' .. id
  local f = redis.call('HMGET', pod, 'url', 'seats_total', 'ready', 'held', 'last_claim_ms')
  if not f[1] then
    -- The record expired: the pod stopped heartbeating. Forget it.
    redis.call('SREM', P .. 'pods', id)
  else
    local seats = pod .. ':seats'
    local occupied, claimed, lapsed = 0, 0, 0
    local all = redis.call('HGETALL', seats)
    for i = 1, #all, 2 do
      local st, x, h = string.match(all[i + 1], '^(%a):%d+:(%d+):(%x*)$')
      if h == hash then
        return redis.error_reply('ERR seat token hash already in use')
      end
      if st == 'c' and tonumber(x) <= now then
        -- Lapse sweep: an unredeemed claim past its deadline frees its seat.
        redis.call('HDEL', seats, all[i])
        lapsed = lapsed + 1
      else
        occupied = occupied + 1
        if st == 'c' then claimed = claimed + 1 end
      end
    end
    if lapsed > 0 then redis.call('HINCRBY', pod, 'lapsed', lapsed) end
    if f[3] == '1' then
      -- The pod's own count of sessions guards against a seats hash that
      -- lost entries (a failover to a stale replica): take the larger.
      local total = tonumber(f[2]) or 0
      local free = total - math.max(occupied, (tonumber(f[4]) or 0) + claimed)
      local last = tonumber(f[5]) or 0
      if free > 0 and (not best or free > best_free or (free == best_free and last < best_last)) then
        best, best_free, best_last = id, free, last
      end
    end
  end
end
if not best then
  return cjson.encode({error = 'no_free_seat'})
end

local pod = P .. 'pod:' .. best
local seats = pod .. ':seats'
local f = redis.call('HMGET', pod, 'url', 'seats_total', 'claim_ttl_ms')
local slot
for s = 0, tonumber(f[2]) - 1 do
  if redis.call('HEXISTS', seats, s) == 0 then
    slot = s
    break
  end
end
if not slot then
  return cjson.encode({error = 'no_free_seat'})
end
local ttl = tonumber(f[3])
local epoch = redis.call('INCR', P .. 'epoch')
redis.call('HSET', seats, slot, 'c:' .. epoch .. ':' .. (now + ttl) .. ':' .. hash)
local pttl = redis.call('PTTL', pod)
if pttl > 0 then redis.call('PEXPIRE', seats, pttl) end
redis.call('HSET', pod, 'last_claim_ms', now)
return cjson.encode({pod_id = best, url = f[1], expires_in_ms = ttl, epoch = epoch, slot = slot})
