#!/usr/bin/env bash
# Runs every test of Patron. On a fresh machine it first makes sure what the tests need is
# there: PostgreSQL answering on 127.0.0.1:5432 (started if installed and down); the
# browser tests install Debian's chromium and the npm packages (scripts/e2e.sh).
# The PostgreSQL tests are skipped, saying so, only when no server can be had.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

log "PostgreSQL"
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    done
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if pg_up; then
  echo "PostgreSQL answers on 127.0.0.1:5432: the store and API suites run on it too"
  export PATRON_REQUIRE_POSTGRES=1
else
  echo "PostgreSQL is NOT reachable on 127.0.0.1:5432: the PostgreSQL tests will be SKIPPED"
fi

log "formatting"
cargo fmt --all -- --check

log "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
cargo test --workspace --locked

# After cargo test, so target/debug/patron is the binary just tested.
cargo build --locked --bin patron

log "hostile input: schemathesis against the OpenAPI document"
# CI has PyPI: a failure to install schemathesis there is a failure, not a skip.
PATRON_REQUIRE_SCHEMATHESIS=${PATRON_REQUIRE_SCHEMATHESIS:-1} PATRON_BIN="$PWD/target/debug/patron" \
  ./scripts/schemathesis.sh

log "browser tests (chromium + playwright-core)"
./scripts/e2e.sh
