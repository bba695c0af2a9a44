#!/usr/bin/env bash
# Scale run (issue 9): N concurrent sessions of 10 slices/s of 1 KiB against
# one seatkeeper process on this machine, the load generator in its own
# process; then 1,000 clients frozen at once.
#
#   bench/scale.sh [N ...]        (default: 100 1000 10000)
#
# Writes bench/results/scale.json (one JSON object per line) and
# bench/results/scale.png. Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000 10000)
secs=${SCALE_SECS:-30}
cargo build --release -q -p seatkeeper
bin=target/release/seatkeeper
out=bench/results/scale.json
mkdir -p bench/results
: > "$out"
port=18500
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

for n in "${sizes[@]}"; do
  port=$((port + 1))
  "$bin" serve --listen "127.0.0.1:$port" --seats 10000 --max-connections 19000 \
    --engine synthetic:10:1024 2>"bench/results/scale-server-$n.log" &
  srv=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  rss0=$(rss_kb $srv)
  "$bin" load --url "ws://127.0.0.1:$port/ws" --sessions "$n" --duration-s "$secs" \
    --connect-concurrency 500 >"bench/results/scale-load-$n.json" 2>/dev/null &
  load=$!
  # Steady state: the middle of the run, after every session connected.
  sleep $((secs / 3))
  t0=$(cpu_ticks $srv); s0=$(metric seatkeeper_watchdog_samples_total); c0=$(metric seatkeeper_watchdog_sweep_cpu_seconds_total)
  w0=$(metric seatkeeper_watchdog_sweep_seconds_total); n0=$(metric seatkeeper_watchdog_sweeps_total)
  sleep $((secs / 3))
  t1=$(cpu_ticks $srv); s1=$(metric seatkeeper_watchdog_samples_total); c1=$(metric seatkeeper_watchdog_sweep_cpu_seconds_total)
  w1=$(metric seatkeeper_watchdog_sweep_seconds_total); n1=$(metric seatkeeper_watchdog_sweeps_total)
  rss=$(rss_kb $srv); held=$(metric seatkeeper_seats_held)
  wait $load || true
  python3 - "$n" "$secs" "$rss0" "$rss" "$t0" "$t1" "$hz" "$s0" "$s1" "$c0" "$c1" "$w0" "$w1" "$n0" "$n1" "$held" \
    "bench/results/scale-load-$n.json" >>"$out" <<'PY'
import json, sys
n, secs, rss0, rss, t0, t1, hz, s0, s1, c0, c1, w0, w1, n0, n1, held, load = sys.argv[1:]
n, secs = int(n), int(secs)
window = secs // 3
report = json.load(open(load))
samples = float(s1) - float(s0)
sweeps = max(float(n1) - float(n0), 1)
print(json.dumps({
    "sessions": n,
    "ready": report["ready"],
    "seats_held_mid_run": int(float(held)),
    "rss_mib": round(int(rss) / 1024, 1),
    "rss_per_session_kib": round((int(rss) - int(rss0)) / n, 1),
    "server_cpu_pct": round((int(t1) - int(t0)) / int(hz) / window * 100, 1),
    "slices_per_s": round(report["slices_per_s"]),
    "expected_slices_per_s": n * 10,
    "latency_p50_ms": report["latency"]["p50_us"] / 1000,
    "latency_p99_ms": report["latency"]["p99_us"] / 1000,
    "dropped": report["dropped"],
    "ended_early": report["ended_early"],
    "watchdog_cpu_ns_per_socket": round((float(c1) - float(c0)) / samples * 1e9) if samples else None,
    "watchdog_sweep_cpu_ms": round((float(c1) - float(c0)) / sweeps * 1e3, 2),
    "watchdog_sweep_wall_ms": round((float(w1) - float(w0)) / sweeps * 1e3, 2),
}))
PY
  kill $srv; wait $srv 2>/dev/null || true
  tail -1 "$out"
done

# 1,000 clients frozen at once: time to release every seat (grace 5 s, 250 ms sampling).
port=$((port + 1))
"$bin" serve --listen "127.0.0.1:$port" --seats 2000 --max-connections 19000 --engine demo \
  --dead-client-stall-s 5 --watchdog-interval-ms 250 --resume-window-s 0 2>bench/results/scale-reap.log &
srv=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
"$bin" chaos --url "ws://127.0.0.1:$port/ws" --scenario frozen --clients 1000 --poll-ms 500 --timeout-s 60 \
  >bench/results/scale-reap.jsonl 2>/dev/null || true
kill $srv; wait $srv 2>/dev/null || true
python3 - >>"$out" <<'PY'
import json, statistics
rows = [json.loads(l) for l in open("bench/results/scale-reap.jsonl") if l.startswith("{")]
times = sorted(r["release_s"] for r in rows if r.get("release_s") is not None)
print(json.dumps({
    "frozen_at_once": len(rows),
    "released": len(times),
    "reaped_verdicts": sum(r["verdict"] == "reaped" for r in rows),
    "release_s_min": times[0] if times else None,
    "release_s_median": statistics.median(times) if times else None,
    "release_s_max": times[-1] if times else None,
    "grace_s": 5, "interval_ms": 250,
}))
PY
tail -1 "$out"
python3 bench/plot_scale.py bench/results/scale.json bench/results/scale.png || true
