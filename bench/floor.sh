#!/usr/bin/env bash
# The floor (issue 17): what this kernel charges per slice for N sessions of
# 10 slices/s of 1 KiB, each side split into user and kernel time. Every
# server (floor-peer, seatkeeper, tt-peer) meets every client (the lean
# `floor-peer --client`, and `seatkeeper load`), server pinned to CPU 0 and
# client to CPU 1, as in bench/curve.sh.
#
#   bench/floor.sh [N ...]          (default: 2000 10000 19000)
#   FLOOR_SECS=15 FLOOR_SERVERS="floor-peer seatkeeper" FLOOR_CLIENTS="floor load" bench/floor.sh 10000
#   FLOOR_ACK_EVERY=4 FLOOR_CLIENTS=floor bench/floor.sh 19000   (lean client acks every 4th slice)
#
# Appends one JSON object per (server, client, N) to FLOOR_OUT
# (default bench/results/floor.json). Loopback only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(2000 10000 19000)
secs=${FLOOR_SECS:-15}
servers=${FLOOR_SERVERS:-"floor-peer seatkeeper tt-peer"}
clients=${FLOOR_CLIENTS:-"floor load"}
out=${FLOOR_OUT:-bench/results/floor.json}
cargo build --release -q -p seatkeeper -p seatkeeper-bench
rel=target/release
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
port=18900
hz=$(getconf CLK_TCK)
# utime and stime, in clock ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

for n in "${sizes[@]}"; do
  for client in $clients; do
    for server in $servers; do
      port=$((port + 1))
      addr=127.0.0.1:$port
      common=(--listen "$addr" --seats $((n + 100)) --engine synthetic:10:1024)
      case $server in
        seatkeeper) taskset -c 0 $rel/seatkeeper serve "${common[@]}" --max-connections 19500 2>"$scratch/srv.log" & ;;
        *) taskset -c 0 "$rel/$server" "${common[@]}" 2>"$scratch/srv.log" & ;;
      esac
      srv=$!
      for _ in $(seq 50); do curl -sf "http://$addr/sessions" >/dev/null && break; sleep 0.1; done
      if [ "$client" = floor ]; then
        taskset -c 1 $rel/floor-peer --client "$n" --listen "$addr" --duration-s "$secs" \
          --settle-s $((secs / 3)) --ack-every "${FLOOR_ACK_EVERY:-1}" >"$scratch/load.json" &
      else
        taskset -c 1 $rel/seatkeeper load --url "ws://$addr/ws" --sessions "$n" --duration-s "$secs" \
          --settle-s $((secs / 3)) --connect-concurrency 500 --bye false >"$scratch/load.json" 2>/dev/null &
      fi
      load=$!
      # Steady state: the middle third of the run, after every session connected.
      sleep $((secs / 3))
      a="$(ticks $srv) $(ticks $load)"
      sleep $((secs / 3))
      b="$(ticks $srv) $(ticks $load)"
      wait $load || true
      kill $srv; wait $srv 2>/dev/null || true
      python3 - "$server" "$client" "$n" "$secs" "$hz" "$a" "$b" "$scratch/load.json" >>"$out" <<'PY'
import json, sys
server, client, n, secs, hz, a, b, load = sys.argv[1:]
n, secs, hz = int(n), int(secs), int(hz)
window = secs // 3
r = json.load(open(load))
d = [int(y) - int(x) for x, y in zip(a.split(), b.split())]  # su ss lu ls
# Slices a second after the settle third (both clients count latency only
# from there), not the whole run's average, which the connect ramp lowers.
rate = max(r["latency"]["count"] / max(r["elapsed_s"] - window, 1e-9), 1)
us = lambda t: round(t / hz / window / rate * 1e6, 2)  # µs per delivered slice
lat = r["latency"]
print(json.dumps({
    "server": server, "client": client, "ack_every": r.get("ack_every", 1),
    "sessions": n, "ready": r["ready"],
    "delivered": round(r["slices_per_s"] * r["elapsed_s"] / (n * 10 * secs), 3),
    "slices_per_s": round(r["slices_per_s"]),
    "steady_slices_per_s": round(rate),
    "p50_late_ms": lat["p50_us"] / 1000 if lat["p50_us"] is not None else None,
    "p99_late_ms": lat["p99_us"] / 1000 if lat["p99_us"] is not None else None,
    "server_cores": round((d[0] + d[1]) / hz / window, 3),
    "server_us_per_slice": {"user": us(d[0]), "sys": us(d[1]), "total": us(d[0] + d[1])},
    "client_cores": round((d[2] + d[3]) / hz / window, 3),
    "client_us_per_slice": {"user": us(d[2]), "sys": us(d[3]), "total": us(d[2] + d[3])},
    "errors": r["errors"], "seq_gaps": r["seq_gaps"], "ended_early": r["ended_early"],
    # The machine is shared: its load averages (1, 5, 15 min) at the end.
    "loadavg": open("/proc/loadavg").read().split()[:3],
}))
PY
      tail -1 "$out"
    done
  done
done
