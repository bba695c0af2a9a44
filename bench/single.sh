#!/usr/bin/env bash
# One session's throughput against raw TCP, read by the same reader (issue 17):
# `stream-reader` (bench/peers, one thread, blocking socket, frames walked in
# place, one cumulative ack per read) reads a seatkeeper session of 1 MiB or
# 4 KiB synthetic slices, then a raw TCP socket fed the same frames by
# `stream-reader raw-send`. Sender (server) on CPU 0, reader on CPU 1.
# Interleaved, REPS times each; the ratio is taken within each pair.
#
#   bench/single.sh                       (builds, then measures target/release/seatkeeper)
#   BIN=/path/to/seatkeeper bench/single.sh   (measures that build; nothing is built)
#   REPS=3 SECS=5 SIZES="1048576 4096" bench/single.sh
#   PIN=0 bench/single.sh                 (no taskset: both sides float)
#
# Appends one JSON object per pair to bench/results/single.json (SINGLE_OUT).
# Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${BIN:-}" ] || cargo build --release -q -p seatkeeper -p seatkeeper-bench
bin=${BIN:-target/release/seatkeeper}
reader=${READER:-target/release/stream-reader}
[ -x "$reader" ] || cargo build --release -q -p seatkeeper-bench --bin stream-reader
reps=${REPS:-3}
secs=${SECS:-5}
sizes=${SIZES:-"1048576 4096"}
out=${SINGLE_OUT:-bench/results/single.json}
mkdir -p bench/results
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ "${PIN:-1}" = 0 ]; then on0=(); on1=(); else on0=(taskset -c 0); on1=(taskset -c 1); fi

# Asked rates: above what one session can take, so the window, not the
# engine, sets the pace (droppable slices past the window are dropped).
rate_for() { if [ "$1" -ge 65536 ]; then echo 20000; else echo 1000000; fi; }
window_for() { if [ "$1" -ge 65536 ]; then echo "64 67108864"; else echo "8192 67108864"; fi; }

for rep in $(seq "$reps"); do
  for size in $sizes; do
    port=$(free_port)
    "${on0[@]}" "$reader" raw-send --listen "127.0.0.1:$port" --slice-bytes "$size" &
    snd=$!
    sleep 0.3
    raw=$(timeout $((secs + 20)) "${on1[@]}" "$reader" raw --connect "127.0.0.1:$port" --seconds "$secs")
    kill $snd 2>/dev/null || true; wait $snd 2>/dev/null || true

    port=$(free_port)
    read -r wslices wbytes <<<"$(window_for "$size")"
    "${on0[@]}" "$bin" serve --listen "127.0.0.1:$port" --seats 4 \
      --engine "synthetic:$(rate_for "$size"):$size" \
      --window-slices "$wslices" --window-bytes "$wbytes" 2>/dev/null &
    srv=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    kill -0 $srv # ours, not someone else's on that port
    ws=$(timeout $((secs + 20)) "${on1[@]}" "$reader" ws --connect "127.0.0.1:$port" --seconds "$secs")
    kill $srv 2>/dev/null || true; wait $srv 2>/dev/null || true

    python3 - "$size" "$rep" "$bin" "${PIN:-1}" "$raw" "$ws" >>"$out" <<'PY'
import json, sys
size, rep, binary, pin, raw, ws = sys.argv[1:]
raw, ws = json.loads(raw), json.loads(ws)
print(json.dumps({
    "slice_bytes": int(size), "rep": int(rep), "binary": binary, "pinned": pin != "0",
    "raw_payload_mb_per_s": raw["payload_mb_per_s"], "raw_slices_per_s": raw["slices_per_s"],
    "ws_payload_mb_per_s": ws["payload_mb_per_s"], "ws_slices_per_s": ws["slices_per_s"],
    "ratio": round(ws["payload_mb_per_s"] / raw["payload_mb_per_s"], 3),
}))
PY
    tail -1 "$out"
  done
done
