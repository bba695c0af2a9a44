#!/usr/bin/env bash
# Two (or more) seatkeeper builds side by side in one run, alternating, with
# the same load client on every run: N sessions of 10 slices/s of 1 KiB,
# server on CPU 0 and `seatkeeper load` on CPU 1 (PIN=0: both float). CPU is
# taken over the middle third of the run, per slice delivered after the
# first third (the load's settle time); the share of slices the engine's push
# wrote itself comes from /metrics at the end.
#
#   BINS="/tmp/before /tmp/after" bench/ab.sh [N ...]      (default N: 2000)
#   REPS=3 SECS=15 PIN=0 CLIENT=target/release/seatkeeper AB_OUT=ab.json bench/ab.sh 5000
#
# Appends one JSON object per run to AB_OUT (default bench/results/ab.json).
# Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(2000)
[ -n "${BINS:-}" ] || { echo "ab.sh: set BINS to the builds to compare" >&2; exit 2; }
client=${CLIENT:-target/release/seatkeeper}
secs=${SECS:-15}
settle=$((secs / 3))
out=${AB_OUT:-bench/results/ab.json}
hz=$(getconf CLK_TCK)
if [ "${PIN:-1}" = 0 ]; then on0=(); on1=(); else on0=(taskset -c 0); on1=(taskset -c 1); fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ab.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
port=19600
for n in "${sizes[@]}"; do
  for _ in $(seq "${REPS:-2}"); do
    for bin in $BINS; do
      port=$((port + 1))
      addr=127.0.0.1:$port
      "${on0[@]}" "$bin" serve --listen "$addr" --seats $((n + 100)) --engine synthetic:10:1024 \
        --max-connections 19500 2>"$scratch/srv.log" &
      srv=$!
      for _ in $(seq 50); do curl -sf "http://$addr/sessions" >/dev/null && break; sleep 0.1; done
      rss0=$(rss_kb $srv)
      "${on1[@]}" "$client" load --url "ws://$addr/ws" --sessions "$n" --duration-s "$secs" \
        --settle-s "$settle" --connect-concurrency 500 --bye false >"$scratch/load.json" 2>/dev/null &
      load=$!
      sleep "$settle"; a="$(ticks $srv) $(ticks $load)"
      sleep "$settle"; b="$(ticks $srv) $(ticks $load)"; rss=$(rss_kb $srv)
      wait $load || true
      pushed=$(metric "$addr" seatkeeper_slices_written_by_push_total)
      sent=$(metric "$addr" seatkeeper_slices_sent_total)
      kill $srv; wait $srv 2>/dev/null || true
      python3 bench/steady.py "$scratch/load.json" "$hz" "$settle" "$a" "$b" server="$bin" \
        sessions="$n" pushed="${pushed:-0}" sent="${sent:-0}" rss0="$rss0" rss="$rss" >>"$out"
      tail -1 "$out"
    done
  done
done
