#!/usr/bin/env bash
# Watchdog sweep cost under load, two builds side by side in one run: N
# sessions of 10 slices/s of 1 KiB (`seatkeeper load`, acks coalesced within
# 10 ms) in its own process, default watchdog settings (sweeps every 500 ms,
# 30 s grace). Figures from /metrics over SWEEP_WINDOW seconds (15) that
# start once every session is watched (or half the run has passed).
# SWEEP_PIN=1 pins the server to CPU 0 and the load to CPU 1 (on a machine
# shared with other work, one core may not hold 10,000 sessions).
#
#   SWEEP_BEFORE=/path/to/old/seatkeeper bench/sweep.sh [N ...]   (default: 10000 19000)
#   SWEEP_SECS=60 (run length)   SWEEP_AFTER=target/release/seatkeeper
#   SWEEP_RATE=5 (slices a second per session, default 10: a load the
#   machine can carry at 19,000 sessions, so the sweep is measured with
#   clients that keep up rather than on an overloaded server)
#
# Appends one JSON object per (build, N) to bench/results/sweep.json.
# Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 19000)
secs=${SWEEP_SECS:-60}
window=${SWEEP_WINDOW:-15}
rate=${SWEEP_RATE:-10}
after=${SWEEP_AFTER:-target/release/seatkeeper}
builds=("after=$after")
[ -n "${SWEEP_BEFORE:-}" ] && builds=("before=$SWEEP_BEFORE" "${builds[@]}")
out=${SWEEP_OUT:-bench/results/sweep.json}
mkdir -p bench/results
# Each run's server logs and load reports are scratch (kept with SWEEP_KEEP=1):
# a run only appends to $out.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sweep.XXXXXX")
keep_or_remove() {
  if [ "${SWEEP_KEEP:-0}" = 1 ]; then echo "sweep: scratch files kept in $scratch" >&2; else rm -rf "$scratch"; fi
}
trap keep_or_remove EXIT
port=18900
pin_srv=(); pin_load=()
[ "${SWEEP_PIN:-0}" = 1 ] && pin_srv=(taskset -c 0) && pin_load=(taskset -c 1)

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
snap() {
  for k in sweeps_total samples_total sweep_cpu_seconds_total sweep_seconds_total looks_total exempt_total; do
    v=$(metric "seatkeeper_watchdog_$k"); printf '%s ' "${v:-0}"
  done
}

for n in "${sizes[@]}"; do
  for b in "${builds[@]}"; do
    name=${b%%=*}; bin=${b#*=}
    port=$((port + 1))
    "${pin_srv[@]}" "$bin" serve --listen "127.0.0.1:$port" --seats $((n + 100)) --max-connections 19500 \
      --engine "synthetic:$rate:1024" 2>"$scratch/sweep-$name-$n.log" &
    srv=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    "${pin_load[@]}" "$bin" load --url "ws://127.0.0.1:$port/ws" --sessions "$n" --duration-s "$secs" \
      --connect-concurrency 500 --bye false >"$scratch/sweep-load-$name-$n.json" 2>/dev/null &
    load=$!
    t0=$SECONDS
    while [ $((SECONDS - t0)) -lt $((secs / 2)) ]; do
      [ "$(metric seatkeeper_watchdog_sockets)" = "$n" ] && break
      sleep 1
    done
    sleep 3; a=$(snap)
    sleep "$window"; z=$(snap)
    wait $load || true
    kill $srv; wait $srv 2>/dev/null || true
    python3 - "$name" "$n" "$a" "$z" "$scratch/sweep-load-$name-$n.json" "$rate" >>"$out" <<'PY'
import json, sys
name, n, a, z, load, rate = sys.argv[1:]
a, z = [float(x) for x in a.split()], [float(x) for x in z.split()]
d = [y - x for x, y in zip(a, z)]
sweeps, swept, cpu, wall, looks, exempt = d
r = json.load(open(load))
print(json.dumps({
    "build": name, "sessions": int(n), "rate": int(rate), "ready": r["ready"],
    "delivered_per_s": round(r["slices_per_s"] / (int(n) * int(rate)), 3),
    "p99_late_ms": r["latency"]["p99_us"] / 1000 if r["latency"]["p99_us"] is not None else None,
    "sweeps": int(sweeps),
    "sockets_per_sweep": round(swept / sweeps) if sweeps else None,
    "cpu_us_per_socket_per_sweep": round(cpu / swept * 1e6, 3) if swept else None,
    "sweep_cpu_ms": round(cpu / sweeps * 1e3, 2) if sweeps else None,
    "sweep_wall_ms": round(wall / sweeps * 1e3, 2) if sweeps else None,
    "looked_share": round(looks / swept, 3) if swept and looks + exempt else None,
}))
PY
    tail -1 "$out"
  done
done
