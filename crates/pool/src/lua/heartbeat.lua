-- seatkeeper pool: a pod registers (first call) and heartbeats (every call).
-- ARGV: pod_id, instance, url, seats_total, ready (0|1), draining (0|1),
--       held (the pod's own session count), claim_ttl_ms, ttl_ms,
--       max_epoch (highest epoch the pod holds), assert (0|1), labels (a
--       JSON object), then pairs slot, epoch for every lease the pod holds.
-- Returns {status, registered_now, lapsed, fenced, resynced, reserved} with
-- status 'ok' or 'conflict' (another live instance owns this pod id);
-- reserved counts unexpired, unredeemed claims on this pod.
--
-- assert = 1 after a possible failover (a new connection) or after the pod
-- refused a second token for a seat it holds: the pod is the authority on
-- its own sessions, so its leases overwrite whatever a failed-over Redis
-- says about those slots, and the epoch counter moves past both the stored
-- value and the pod's highest epoch (epochs in Redis can go backwards
-- across a failover).
local P = 'seatkeeper:pool:'
local id, inst = ARGV[1], ARGV[2]
local pod = P .. 'pod:' .. id
local seats, claims = pod .. ':seats', pod .. ':claims'
local ttl = tonumber(ARGV[9])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local cur = redis.call('HGET', pod, 'instance')
if cur and cur ~= inst then
  return {'conflict', 0, 0, 0, 0, 0}
end
local fresh = 0
if not cur then
  -- A new registration: nothing of an earlier incarnation survives; held
  -- seats come back from the leases below.
  fresh = 1
  redis.call('DEL', seats, claims)
  redis.call('HSET', pod, 'instance', inst, 'registered_ms', now, 'lapsed', 0, 'last_claim_ms', 0)
end
redis.call('HSET', pod, 'url', ARGV[3], 'seats_total', ARGV[4], 'ready', ARGV[5],
  'draining', ARGV[6], 'held', ARGV[7], 'claim_ttl_ms', ARGV[8], 'heartbeat_ms', now,
  'labels', ARGV[12])
redis.call('SADD', P .. 'pods', id)
for k, v in pairs(cjson.decode(ARGV[12])) do
  redis.call('SADD', P .. 'label:' .. k .. '=' .. v, id)
end

-- Epochs never go backwards, even when Redis restarted without its data.
local ek = P .. 'epoch'
local assert_ = ARGV[11] == '1'
local stored = tonumber(redis.call('GET', ek) or '0')
if assert_ then
  redis.call('SET', ek, math.max(stored, tonumber(ARGV[10])) + 1)
elseif stored < tonumber(ARGV[10]) then
  redis.call('SET', ek, ARGV[10])
end

local mine = {}
for i = 13, #ARGV, 2 do
  mine[ARGV[i]] = tonumber(ARGV[i + 1])
end
local lapsed, fenced, resynced = 0, 0, 0
local all = redis.call('HGETALL', seats)
for i = 1, #all, 2 do
  local slot = all[i]
  local st, e, x, h = string.match(all[i + 1], '^(%a):(%d+):(%d+):(%x*)$')
  e = tonumber(e)
  local m = mine[slot]
  if st == 'c' and tonumber(x) <= now then
    -- Lapse sweep against Redis TIME.
    redis.call('HDEL', seats, slot)
    redis.call('ZREM', claims, slot)
    lapsed = lapsed + 1
  elseif m then
    if e == m then
      if st ~= 'h' then
        redis.call('HSET', seats, slot, 'h:' .. e .. ':' .. now .. ':' .. h)
        redis.call('ZREM', claims, slot)
      end
      mine[slot] = nil
    elseif e > m and not assert_ then
      -- A newer claim owns the slot: our lease is stale and is fenced off.
      fenced = fenced + 1
      mine[slot] = nil
    elseif e > m then
      -- Asserting: a claim Redis made on a seat the pod holds (its state
      -- was lost in a failover) is void; the pod's lease goes back below.
      fenced = fenced + 1
      redis.call('ZREM', claims, slot)
    end
    -- else: Redis holds an older epoch than our lease; ours wins below.
  elseif st == 'h' then
    -- Held in Redis but not by any live lease: a release that never
    -- arrived. The pod is the authority on its own sessions.
    redis.call('HDEL', seats, slot)
    resynced = resynced + 1
  elseif st == 'c' then
    -- Keep the deadline index whole (ZADD of a present member is a no-op).
    redis.call('ZADD', claims, x, slot)
  end
end
for slot, e in pairs(mine) do
  -- Re-publish held seats Redis lost (a restart without persistence).
  redis.call('HSET', seats, slot, 'h:' .. e .. ':' .. now .. ':')
  redis.call('ZREM', claims, slot)
end
-- Drop index entries whose claim is gone.
for _, slot in ipairs(redis.call('ZRANGE', claims, 0, -1)) do
  local v = redis.call('HGET', seats, slot)
  if not v or string.sub(v, 1, 2) ~= 'c:' then redis.call('ZREM', claims, slot) end
end

lapsed = lapsed + (tonumber(redis.call('HGET', pod, 'lapsed')) or 0)
redis.call('HSET', pod, 'lapsed', 0)
redis.call('PEXPIRE', pod, ttl)
redis.call('PEXPIRE', seats, ttl)
redis.call('PEXPIRE', claims, ttl)
return {'ok', fresh, lapsed, fenced, resynced, redis.call('ZCARD', claims)}
