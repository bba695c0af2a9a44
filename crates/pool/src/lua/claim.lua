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
  elseif f[3] == '1' then
    local seats, claims = pod .. ':seats', pod .. ':claims'
    -- Lapse sweep against Redis TIME: an unredeemed claim past its
    -- deadline frees its seat now, not when some notification arrives.
    local lapsed = redis.call('ZRANGEBYSCORE', claims, '-inf', now)
    for _, slot in ipairs(lapsed) do
      local v = redis.call('HGET', seats, slot)
      if v and string.sub(v, 1, 2) == 'c:' then redis.call('HDEL', seats, slot) end
      redis.call('ZREM', claims, slot)
    end
    if #lapsed > 0 then redis.call('HINCRBY', pod, 'lapsed', #lapsed) end
    -- The pod's own count of sessions is a floor, so a seats hash that
    -- lost entries (a failover to a stale replica) cannot look free.
    local total = tonumber(f[2]) or 0
    local taken = math.max(redis.call('HLEN', seats), (tonumber(f[4]) or 0) + redis.call('ZCARD', claims))
    local free = total - taken
    local last = tonumber(f[5]) or 0
    if free > 0 and (not best or free > best_free or (free == best_free and last < best_last)) then
      best, best_free, best_last = id, free, last
    end
  end
end
if not best then
  return cjson.encode({error = 'no_free_seat'})
end

local pod = P .. 'pod:' .. best
local seats, claims = pod .. ':seats', pod .. ':claims'
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
local deadline = now + ttl
local epoch = redis.call('INCR', P .. 'epoch')
redis.call('HSET', seats, slot, 'c:' .. epoch .. ':' .. deadline .. ':' .. hash)
redis.call('ZADD', claims, deadline, slot)
local pttl = redis.call('PTTL', pod)
if pttl > 0 then
  redis.call('PEXPIRE', seats, pttl)
  redis.call('PEXPIRE', claims, pttl)
end
redis.call('HSET', pod, 'last_claim_ms', now)
return cjson.encode({pod_id = best, url = f[1], expires_in_ms = ttl, epoch = epoch, slot = slot})
