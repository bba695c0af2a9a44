-- seatkeeper pool: a pod leaves the pool on a clean shutdown.
-- ARGV: pod_id, instance, labels (JSON object). Returns 1 if this
-- instance was registered.
local P = 'seatkeeper:pool:'
local pod = P .. 'pod:' .. ARGV[1]
if redis.call('HGET', pod, 'instance') ~= ARGV[2] then
  return 0
end
redis.call('DEL', pod, pod .. ':seats', pod .. ':claims')
redis.call('SREM', P .. 'pods', ARGV[1])
for k, v in pairs(cjson.decode(ARGV[3] or '{}')) do
  redis.call('SREM', P .. 'label:' .. k .. '=' .. v, ARGV[1])
end
return 1
