#!/usr/bin/env bash
# Load clients side by side against one server build, same run: `seatkeeper
# load` (this build), `floor-peer --client` (the lean reference) and, with
# OLD_LOAD, another build's `seatkeeper load`. N sessions of 10 slices/s of
# 1 KiB; server on CPU 0, client on CPU 1; each side's CPU over the middle
# third of the run, per slice delivered after the first third.
#
#   bench/clients.sh [N ...]                      (default: 2000 10000)
#   SERVER=/tmp/old/seatkeeper OLD_LOAD=/tmp/old/seatkeeper SECS=15 bench/clients.sh 10000
#
# Appends one JSON object per (client, N) to CLIENTS_OUT (default
# bench/results/clients.json). Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(2000 10000)
rel=target/release
server=${SERVER:-$rel/seatkeeper}
secs=${SECS:-15}
settle=$((secs / 3))
out=${CLIENTS_OUT:-bench/results/clients.json}
clients="new floor"
[ -n "${OLD_LOAD:-}" ] && clients="old new floor"
hz=$(getconf CLK_TCK)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/clients.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
port=19300
for n in "${sizes[@]}"; do
  for client in $clients; do
    port=$((port + 1))
    addr=127.0.0.1:$port
    taskset -c 0 "$server" serve --listen "$addr" --seats $((n + 100)) --engine synthetic:10:1024 \
      --max-connections 19500 2>"$scratch/srv.log" &
    srv=$!
    for _ in $(seq 50); do curl -sf "http://$addr/sessions" >/dev/null && break; sleep 0.1; done
    load_args=(--url "ws://$addr/ws" --sessions "$n" --duration-s "$secs" --settle-s "$settle"
      --connect-concurrency 500 --bye false)
    case $client in
      old) taskset -c 1 "$OLD_LOAD" load "${load_args[@]}" >"$scratch/load.json" 2>/dev/null & ;;
      new) taskset -c 1 $rel/seatkeeper load "${load_args[@]}" >"$scratch/load.json" 2>/dev/null & ;;
      floor) taskset -c 1 $rel/floor-peer --client "$n" --listen "$addr" --duration-s "$secs" \
        --settle-s "$settle" >"$scratch/load.json" & ;;
    esac
    load=$!
    sleep "$settle"; a="$(ticks $srv) $(ticks $load)"
    sleep "$settle"; b="$(ticks $srv) $(ticks $load)"
    wait $load || true
    kill $srv; wait $srv 2>/dev/null || true
    python3 bench/steady.py "$scratch/load.json" "$hz" "$settle" "$a" "$b" client="$client" \
      sessions="$n" >>"$out"
    tail -1 "$out"
  done
done
