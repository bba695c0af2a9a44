#!/usr/bin/env bash
# The side-by-side benchmark suite, in one go on this machine:
#   seatkeeper; a Python `websockets` server with its default keepalive; the
#   same with the contract's send-stall watchdog; a plain tokio-tungstenite
#   server; raw TCP on loopback. Results in bench/results/ (results.json,
#   summary.md, PNG plots), the machine in bench/results/machine.txt.
#
# Usage: bench/run.sh [--runs N] [--grace-s S] [--only release,blackhole,...]
# (extra flags go to the suite runner: target/release/suite --help).
# Needs root for the blackhole figure (network namespace); skipped without.
# Takes about 10 minutes; every wait inside is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# Python deps, idempotently (the stack we compare against, and the plots).
"$PY" -c 'import websockets, matplotlib' 2>/dev/null \
  || "$PY" -m pip install --quiet 'websockets>=14' matplotlib

cargo build --release -p seatkeeper -p seatkeeper-chaos -p seatkeeper-bench

mkdir -p bench/results
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "kernel: $(uname -r)"
  echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
  echo "python: $("$PY" --version 2>&1), websockets $("$PY" -c 'import websockets; print(websockets.__version__)')"
  echo "rustc: $(rustc --version)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "command: bench/run.sh $*"
} > bench/results/machine.txt
cat bench/results/machine.txt

T=target/release
"$T/suite" --seatkeeper "$T/seatkeeper" --chaos "$T/seatkeeper-chaos" \
  --tt-peer "$T/tt-peer" --raw-tcp "$T/raw-tcp" --py-peer bench/py_peer.py \
  --python "$PY" --out bench/results "$@"

"$PY" bench/plot.py bench/results
echo "results: bench/results/summary.md and bench/results/*.png"
