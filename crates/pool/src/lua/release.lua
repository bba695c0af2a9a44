-- seatkeeper pool: a pod frees a held seat when its session ends.
-- ARGV: pod_id, instance, slot, epoch
-- Returns 1 released, 0 fenced (the slot now belongs to another claim's
-- epoch, so this stale holder must not free it), -1 nothing held there,
-- -2 this instance is not the registered one.
local P = 'seatkeeper:pool:'
local pod = P .. 'pod:' .. ARGV[1]
local seats = pod .. ':seats'
if redis.call('HGET', pod, 'instance') ~= ARGV[2] then
  return -2
end
local v = redis.call('HGET', seats, ARGV[3])
if not v then
  return -1
end
local st, e = string.match(v, '^(%a):(%d+):')
if st == 'h' and tonumber(e) == tonumber(ARGV[4]) then
  redis.call('HDEL', seats, ARGV[3])
  return 1
end
return 0
