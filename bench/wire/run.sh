#!/usr/bin/env bash
# Vectored slice writes: bytes/s of one seatkeeper session (1 MiB and 4 KiB
# synthetic slices) against raw loopback TCP, all read by the same C reader
# (bench/wire/reader.c). Raw TCP (1 MiB writes) is measured right before
# each server run and the ratio taken to that, so a shared machine's drift
# hits both alike; the server's CPU time per GB read (user + system, from
# /proc) is the figure least moved by other load.
#
#   bench/wire/run.sh [ROUNDS] [SECONDS]   # binaries: BINS="label=path ..."
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
SECS=${2:-5}
BINS=${BINS:-"seatkeeper=target/release/seatkeeper"}
RAW=${RAW_TCP_BIN:-target/release/raw-tcp}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
gcc -O2 -D_GNU_SOURCE -o "$work/reader" bench/wire/reader.c
TICK=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

raw() { # prints bytes/s
    local p; p=$(free_port)
    "$RAW" --serve 127.0.0.1:"$p" --chunk 1048576 --seconds $((SECS + 2)) &
    local w=$!
    # The writer takes one connection: no probe, just time to listen.
    sleep 0.5
    "$work/reader" raw 127.0.0.1 "$p" "$SECS" | cut -d' ' -f1
    kill "$w" 2>/dev/null || true; wait "$w" 2>/dev/null || true
}

session() { # binary bytes rate window-slices; prints "bytes/s cpu_s_per_GB"
    local p; p=$(free_port)
    "$1" serve --listen 127.0.0.1:"$p" --engine "synthetic:$3:$2" \
        --window-slices "$4" --window-bytes 67108864 >"$work/server.log" 2>&1 &
    local s=$!
    wait_port "$p"
    local c0 out c1
    c0=$(cpu_ticks "$s")
    out=$("$work/reader" ws 127.0.0.1 "$p" "$SECS")
    c1=$(cpu_ticks "$s")
    kill "$s"; wait "$s" 2>/dev/null || true
    set -- $out
    echo "$1 $(python3 -c "print(f'{($c1 - $c0) / $TICK / ($2 / 1e9):.3f}')")"
}

echo "round,slices,binary,bytes_per_s,raw_tcp_bytes_per_s,ratio,server_cpu_s_per_GB"
for r in $(seq "$ROUNDS"); do
    for size in 1048576:10000:64 4096:2000000:8192; do
        IFS=: read -r bytes rate window <<<"$size"
        for b in $BINS; do
            label=${b%%=*}; bin=${b#*=}
            base=$(raw)
            read -r got cpu <<<"$(session "$bin" "$bytes" "$rate" "$window")"
            ratio=$(python3 -c "print(f'{$got / $base:.2f}')")
            echo "$r,$bytes,$label,$got,$base,$ratio,$cpu"
        done
    done
done
