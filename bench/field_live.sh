#!/usr/bin/env bash
# False reaps at the default flags on shaped links: seatkeeper in field
# namespaces skr-56..61 (tbf 256 kbit/s to 1 Mbit/s), one live `seatkeeper
# chaos` client each (active: reads and acks everything; slow-link: reads a
# third of the stream through 32 KiB), watched for 600 s. Needs root.
# Verdicts in /tmp/skr-extra/verdict-*.json; the namespaces are deleted at the end.
set -u
BIN=${SEATKEEPER_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/seatkeeper}
mkdir -p /tmp/skr-extra
cases="56:256:active 57:384:active 58:512:active 59:1000:active 60:512:slow-link 61:1000:slow-link"
for c in $cases; do
  IFS=: read tag kbit scen <<<"$c"
  ns=skr-$tag
  ip netns del $ns 2>/dev/null; ip link del skr-${tag}d0 2>/dev/null; ip link del skr-${tag}c0 2>/dev/null
  ip netns add $ns
  for kn in d:213 c:214; do
    k=${kn%%:*}; n=${kn##*:}
    ip link add skr-${tag}${k}0 type veth peer name skr-${tag}${k}1
    ip link set skr-${tag}${k}1 netns $ns
    ip addr add 10.$n.$tag.1/30 dev skr-${tag}${k}0; ip link set skr-${tag}${k}0 up
    ip -n $ns addr add 10.$n.$tag.2/30 dev skr-${tag}${k}1; ip -n $ns link set skr-${tag}${k}1 up
  done
  ip -n $ns link set lo up
  tc -n $ns qdisc replace dev skr-${tag}d1 root tbf rate ${kbit}kbit burst 16kb latency 100ms
  SEATKEEPER_LOG=warn ip netns exec $ns $BIN serve --listen 0.0.0.0:1318 > /tmp/skr-extra/server-$tag.log 2>&1 &
  echo $! > /tmp/skr-extra/server-$tag.pid
done
sleep 2
for c in $cases; do
  IFS=: read tag kbit scen <<<"$c"
  $BIN chaos --url ws://10.213.$tag.2:1318/ws --sessions-url http://10.214.$tag.2:1318/sessions \
    --scenario $scen --observe-s 600 --warmup-s 2 > /tmp/skr-extra/verdict-$tag-$kbit-$scen.json 2>&1 &
done
wait $(jobs -p | tail -6) 2>/dev/null
for c in $cases; do
  IFS=: read tag kbit scen <<<"$c"
  kill $(cat /tmp/skr-extra/server-$tag.pid) 2>/dev/null
  ip netns del skr-$tag; ip link del skr-${tag}d0 2>/dev/null; ip link del skr-${tag}c0 2>/dev/null
done
echo done > /tmp/skr-extra/DONE
