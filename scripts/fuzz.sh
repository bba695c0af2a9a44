#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20)
#
# Installs what it needs, idempotently: the nightly toolchain (libFuzzer
# needs -Z flags) and cargo-fuzz. Every target runs even when an earlier one
# crashed; the script fails at the end if any did, naming the reproducer
# libFuzzer saved under fuzz/artifacts/<target>/. Replay one with
#   (cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>)
# New corpus entries go to fuzz/work/<target>/ (not committed); the seeds in
# fuzz/corpus/<target>/ are only read.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build
failed=()
for t in $targets; do
  mkdir -p "work/$t" "corpus/$t"
  log="work/$t.log"
  # -timeout: one input taking 10 s is a hang, reported like a crash
  # (libFuzzer's own default is 20 minutes).
  if cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    printf '%-18s ok    %10s runs  cov %s\n' "$t" "$runs" "$cov"
  else
    printf '%-18s CRASH (log: fuzz/%s)\n' "$t" "$log"
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
