-- seatkeeper pool: list live pods (read-only).
-- Returns an array of JSON strings, one per pod:
--   {"pod_id","url","seats_total","seats_free","lockHeld","ready","age_ms"}
local P = 'seatkeeper:pool:'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'pods')) do
  local pod = P .. 'pod:' .. id
  local f = redis.call('HMGET', pod, 'url', 'seats_total', 'ready', 'held', 'registered_ms')
  if f[1] then
    local occupied, claimed, held = 0, 0, 0
    local all = redis.call('HGETALL', pod .. ':seats')
    for i = 1, #all, 2 do
      local st, x = string.match(all[i + 1], '^(%a):%d+:(%d+):')
      if st == 'h' then
        occupied = occupied + 1
        held = held + 1
      elseif tonumber(x) > now then
        occupied = occupied + 1
        claimed = claimed + 1
      end
    end
    local total = tonumber(f[2]) or 0
    local held_local = tonumber(f[4]) or 0
    local free = math.max(0, total - math.max(occupied, held_local + claimed))
    table.insert(out, cjson.encode({
      pod_id = id,
      url = f[1],
      seats_total = total,
      seats_free = free,
      lockHeld = (held > 0 or held_local > 0),
      ready = (f[3] == '1'),
      age_ms = math.max(0, now - (tonumber(f[5]) or now)),
    }))
  end
end
return out
