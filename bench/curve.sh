#!/usr/bin/env bash
# The scale curve (issue 17): N sessions of 10 slices/s of 1 KiB against
# seatkeeper and, in the same run, against the plain tokio-tungstenite peer
# (bench/peers tt-peer) on the same load, and optionally against floor-peer
# (the leanest server for the subset: a floor, not a server). The server is
# pinned to CPU 0 and `seatkeeper load` (one thread) to CPU 1, so the
# figures are the server's.
#
#   bench/curve.sh [N ...]        (default: 100 1000 2000 5000 10000)
#   CURVE_SECS=15 CURVE_PEERS="seatkeeper tt-peer floor-peer" bench/curve.sh 2000
#   CURVE_PIN=0 bench/curve.sh 19000   (unpinned: both processes on both cores)
#
# Appends one JSON object per (server, N) to bench/results/curve.json
# (CURVE_OUT); that is the only file it writes in the tree. Each run's
# server log and load report go to a temporary directory, removed at the
# end unless CURVE_KEEP=1. Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 2000 5000 10000)
secs=${CURVE_SECS:-15}
peers=${CURVE_PEERS:-"seatkeeper tt-peer"}
# CURVE_BIN: another seatkeeper build to measure (an A/B of one change).
[ -n "${CURVE_BIN:-}" ] || cargo build --release -q -p seatkeeper -p seatkeeper-bench
bin=${CURVE_BIN:-target/release/seatkeeper}
tt=target/release/tt-peer
out=${CURVE_OUT:-bench/results/curve.json}
mkdir -p bench/results
port=18700
hz=$(getconf CLK_TCK)
# CURVE_PIN=0: let the kernel place both processes on both cores (the
# machine as a whole, not the server on one core).
pin_srv=(taskset -c 0); pin_load=(taskset -c 1)
[ "${CURVE_PIN:-1}" = 0 ] && pin_srv=() && pin_load=()
scratch=$(mktemp -d "${TMPDIR:-/tmp}/curve.XXXXXX")
keep_or_remove() {
  if [ "${CURVE_KEEP:-0}" = 1 ]; then echo "curve: scratch files kept in $scratch" >&2; else rm -rf "$scratch"; fi
}
trap keep_or_remove EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

for n in "${sizes[@]}"; do
  for peer in $peers; do
    port=$((port + 1))
    seats=$((n + 100))
    if [ "$peer" = seatkeeper ]; then
      "${pin_srv[@]}" "$bin" serve --listen "127.0.0.1:$port" --seats "$seats" --max-connections 19500 \
        --engine synthetic:10:1024 2>"$scratch/curve-$peer-$n.log" &
    elif [ "$peer" = floor-peer ]; then
      # The floor: the leanest server for the same subset (bench/peers).
      "${pin_srv[@]}" target/release/floor-peer --listen "127.0.0.1:$port" --seats "$seats" \
        --engine synthetic:10:1024 2>"$scratch/curve-$peer-$n.log" &
    else
      "${pin_srv[@]}" "$tt" --listen "127.0.0.1:$port" --seats "$seats" \
        --engine synthetic:10:1024 2>"$scratch/curve-$peer-$n.log" &
    fi
    srv=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/sessions" >/dev/null && break; sleep 0.1; done
    rss0=$(rss_kb $srv)
    "${pin_load[@]}" "$bin" load --url "ws://127.0.0.1:$port/ws" --sessions "$n" --duration-s "$secs" \
      --settle-s $((secs / 3)) --connect-concurrency 500 --bye false >"$scratch/curve-load-$peer-$n.json" 2>/dev/null &
    load=$!
    # Steady state: CPU over the middle third of the run, after every session
    # connected, per slice delivered after the same first third (the load's
    # settle time: its latency figures count only those slices too).
    sleep $((secs / 3))
    t0=$(cpu_ticks $srv); l0=$(cpu_ticks $load); s0="$(sys_ticks $srv) $(sys_ticks $load)"
    sleep $((secs / 3))
    t1=$(cpu_ticks $srv); l1=$(cpu_ticks $load); rss=$(rss_kb $srv); s1="$(sys_ticks $srv) $(sys_ticks $load)"
    export LOAD_TICKS="$l0 $l1" SYS_TICKS="$s0 $s1"
    wait $load || true
    kill $srv; wait $srv 2>/dev/null || true
    python3 - "$peer" "$n" "$secs" "$rss0" "$rss" "$t0" "$t1" "$hz" \
      "$scratch/curve-load-$peer-$n.json" "$bin" >>"$out" <<'PY'
import json, os, sys
peer, n, secs, rss0, rss, t0, t1, hz, load = sys.argv[1:10]
n, secs = int(n), int(secs)
window = secs // 3
r = json.load(open(load))
cpu_s = (int(t1) - int(t0)) / int(hz)
lat = r["latency"]
# Slices a second after the settle third (not the whole run's average,
# which the connect ramp lowers).
steady = lat["count"] / max(r["elapsed_s"] - window, 1e-9)
l0, l1 = map(int, os.environ["LOAD_TICKS"].split())
ss0, ls0, ss1, ls1 = map(int, os.environ["SYS_TICKS"].split())
print(json.dumps({
    "server": peer, "binary": sys.argv[-1], "sessions": n, "ready": r["ready"],
    "server_cores": round(cpu_s / window, 3),
    # The load generator's own CPU: near 1.0 means it, not the server, set the pace.
    "load_cores": round((lambda a, b: (int(b) - int(a)) / int(hz) / window)(*os.environ["LOAD_TICKS"].split()), 3),
    "cpu_us_per_slice": round(cpu_s / window / max(steady, 1) * 1e6, 2),
    # Kernel (system) time's share of each side's CPU over the same window.
    "server_sys_share": round((ss1 - ss0) / max(int(t1) - int(t0), 1), 3),
    "load_sys_share": round((ls1 - ls0) / max(l1 - l0, 1), 3),
    # The machine is shared: its load averages (1, 5, 15 min) at the end.
    "loadavg": open("/proc/loadavg").read().split()[:3],
    "rss_mib": round(int(rss) / 1024, 1),
    "rss_per_session_kib": round((int(rss) - int(rss0)) / n, 1),
    "delivered": round(r["slices_per_s"] * r["elapsed_s"] / (n * 10 * secs), 3),
    "slices_per_s": round(r["slices_per_s"]),
    "steady_slices_per_s": round(steady),
    "delivered_steady": round(steady / (n * 10), 3),
    "p50_late_ms": lat["p50_us"] / 1000 if lat["p50_us"] is not None else None,
    "p99_late_ms": lat["p99_us"] / 1000 if lat["p99_us"] is not None else None,
    "dropped": r["dropped"], "ended_early": r["ended_early"],
}))
PY
    tail -1 "$out"
  done
done
