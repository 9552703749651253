#!/usr/bin/env bash
# Browser tests of the web back office: Debian's chromium driven by playwright-core (npm),
# against a real `patron serve` on an ephemeral port over a fresh database per test file.
# Installs what a fresh machine lacks (chromium, the npm packages), then runs every test.
# Failing pages are saved as target/e2e-screenshots/FAILED-*.png.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null || { echo "node is needed for the browser tests" >&2; exit 1; }

(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

# The binary under test: the debug build `cargo test` made (built here when missing).
export PATRON_BIN="${PATRON_BIN:-$PWD/target/debug/patron}"
if [ ! -x "$PATRON_BIN" ]; then
  cargo build --locked --bin patron
fi
rm -rf target/e2e-screenshots
cd e2e && npm test
