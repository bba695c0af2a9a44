-- seatkeeper pool: list live pods (read-only).
-- Returns an array of JSON strings, one per pod:
--   {"pod_id","url","seats_total","seats_free","lockHeld","ready","age_ms","labels"}
local P = 'seatkeeper:pool:'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'pods')) do
  local pod = P .. 'pod:' .. id
  local f = redis.call('HMGET', pod, 'url', 'seats_total', 'ready', 'held', 'registered_ms', 'labels')
  if f[1] then
    local seats, claims = pod .. ':seats', pod .. ':claims'
    -- Lapsed claims not yet swept count as free: nothing here writes.
    local entries = redis.call('HLEN', seats)
    local claimed = redis.call('ZCARD', claims)
    local live_claims = redis.call('ZCOUNT', claims, '(' .. now, '+inf')
    local held = entries - claimed
    local held_local = tonumber(f[4]) or 0
    local total = tonumber(f[2]) or 0
    local taken = math.max(held + live_claims, held_local + live_claims)
    table.insert(out, cjson.encode({
      pod_id = id,
      url = f[1],
      seats_total = total,
      seats_free = math.max(0, total - taken),
      lockHeld = (held > 0 or held_local > 0),
      ready = (f[3] == '1'),
      age_ms = math.max(0, now - (tonumber(f[5]) or now)),
      labels = cjson.decode(f[6] or '{}'),
    }))
  end
end
return out
