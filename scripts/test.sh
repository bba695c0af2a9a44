#!/usr/bin/env bash
# Runs every seatkeeper test: format and lint gates, the Rust unit and
# integration suites (real sockets, a real redis-server, the Python example
# engine, the chaos scenarios, the soak, a 500-session scale run), the Python
# SDK's pytest suite, the JS client's unit tests (node --test), a bounded fuzz
# run of every decoder, and the Chromium end-to-end suite.
#
# Installs what the tests need, idempotently: Debian packages (redis-server,
# chromium, iproute2, python3, python3-venv), the e2e suite's npm packages and
# the Python SDK with its extras in a virtualenv (target/py-venv). With
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
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

step "npm packages (e2e, JS client's type test)"
if ! (cd e2e && node -e "import('playwright-core').then(()=>{},()=>process.exit(1))" 2>/dev/null); then
  (cd e2e && npm ci --no-audit --no-fund)
fi
[ -x sdk/js/node_modules/.bin/tsc ] || (cd sdk/js && npm ci --no-audit --no-fund)

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

step "Python SDK (pytest against the release binary)"
venv="$root/target/py-venv"
[ -x "$venv/bin/python" ] || python3 -m venv --clear "$venv"
# Reinstall only when the package's metadata changed (the install is
# editable) or something it needs is missing.
stamp="$venv/.seatkeeper-$(sha256sum sdk/python/pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ] || ! "$venv/bin/python" -c 'import seatkeeper.client, numpy, websockets, pytest' 2>/dev/null; then
  "$venv/bin/pip" install -q -e "sdk/python[numpy,client,test]"
  touch "$stamp"
fi
rc=0
"$venv/bin/python" -m pytest sdk/python/tests -q -p no:cacheprovider || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests in sdk/python/tests: failing" >&2
  exit 1
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi

step "JS client (node --test, against the release binary; type test)"
(cd sdk/js && npm test)

step "fuzz every decoder (bounded)"
bash scripts/fuzz.sh 15

step "browser end-to-end (Chromium)"
(cd e2e && npm test)

step "done"
