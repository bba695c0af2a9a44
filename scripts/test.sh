#!/usr/bin/env bash
# Runs every seatkeeper test: format and lint gates, the Rust unit and
# integration suites (real sockets, a real redis-server, the Python example
# engine, the chaos scenarios, the soak, a 500-session scale run), a bounded
# fuzz run of every decoder, and the Chromium end-to-end suite.
#
# Installs what the tests need, idempotently: Debian packages (redis-server,
# chromium, iproute2, python3) and the e2e suite's npm packages. With
# CI=true a missing dependency fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

step "system packages"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
# redis-cli drives the Sentinel failover tests (crates/testkit/src/sentinel.rs).
command -v redis-cli >/dev/null || missing+=(redis-tools)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ip >/dev/null || missing+=(iproute2)
command -v ss >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

step "npm packages (e2e)"
if ! (cd e2e && node -e "import('playwright-core').then(()=>{},()=>process.exit(1))" 2>/dev/null); then
  (cd e2e && npm ci --no-audit --no-fund)
fi

step "cargo-nextest"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

step "format and lint"
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings

step "build (release, once)"
cargo build --release --workspace --all-targets
export SEATKEEPER_BIN="$root/target/release/seatkeeper"

step "Rust tests (unit, integration, chaos)"
cargo nextest run --release --workspace --no-fail-fast --run-ignored all

step "fuzz every decoder (bounded)"
bash scripts/fuzz.sh 15

step "browser end-to-end (Chromium)"
(cd e2e && npm test)

step "done"
