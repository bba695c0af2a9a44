-- seatkeeper pool: claim one free seat on some live pod, atomically.
--
--   EVALSHA <sha1 of this script> 0 <lowercase hex SHA-256 of the seat token>
--           [<claim_id or ''> [<label key> <label value>]...]
--
-- Returns a JSON string, either
--   {"pod_id":"...","url":"...","expires_in_ms":30000,"epoch":42,"slot":0}
-- or
--   {"error":"no_free_seat"}   (also when no pod matches the selector)
--   {"error":"claim_id_conflict"}   (the claim_id was used with another token)
-- The caller keeps the token itself and hands it to the user; Redis only
-- ever sees its hash. With a claim_id the claim is idempotent: running it
-- again (after a timeout or a failover) returns the same seat, never a
-- second one. Label pairs select pods whose labels match all of them; the
-- scan then covers only the matching pods (the intersection of the label
-- index sets), not the whole fleet.
local P = 'seatkeeper:pool:'
local hash = ARGV[1]
if type(hash) ~= 'string' or #hash ~= 64 or not string.match(hash, '^[0-9a-f]+$') then
  return redis.error_reply('ERR seat token hash must be 64 lowercase hex digits')
end
local claim_id = ARGV[2] or ''
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local ck
if claim_id ~= '' then
  ck = P .. 'claim:' .. claim_id
  local prior = redis.call('GET', ck)
  if prior then
    local c = cjson.decode(prior)
    if c.hash ~= hash then
      return cjson.encode({error = 'claim_id_conflict'})
    end
    return cjson.encode({pod_id = c.pod_id, url = c.url, expires_in_ms = math.max(0, c.deadline - now),
      epoch = c.epoch, slot = c.slot, replayed = true})
  end
end

local sel, sets = {}, {}
for i = 3, #ARGV, 2 do
  sel[ARGV[i]] = ARGV[i + 1]
  table.insert(sets, P .. 'label:' .. ARGV[i] .. '=' .. ARGV[i + 1])
end
local candidates
if #sets > 0 then
  candidates = redis.call('SINTER', unpack(sets))
else
  candidates = redis.call('SMEMBERS', P .. 'pods')
end

local best, best_free, best_last
for _, id in ipairs(candidates) do
  local pod = P .. 'pod:' .. id
  local f = redis.call('HMGET', pod, 'url', 'seats_total', 'ready', 'held', 'last_claim_ms', 'labels')
  local matches = f[1] and true
  if matches and #sets > 0 then
    -- The index may name a pod id whose current incarnation has other labels.
    local labels = cjson.decode(f[6] or '{}')
    for k, v in pairs(sel) do
      if labels[k] ~= v then
        matches = false
        redis.call('SREM', P .. 'label:' .. k .. '=' .. v, id)
      end
    end
  end
  if not f[1] then
    -- The record expired: the pod stopped heartbeating. Forget it.
    redis.call('SREM', P .. 'pods', id)
    for _, s in ipairs(sets) do redis.call('SREM', s, id) end
  elseif matches and f[3] == '1' then
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
if ck then
  redis.call('SET', ck, cjson.encode({pod_id = best, url = f[1], deadline = deadline, epoch = epoch,
    slot = slot, hash = hash}), 'PX', ttl)
end
return cjson.encode({pod_id = best, url = f[1], expires_in_ms = ttl, epoch = epoch, slot = slot})
