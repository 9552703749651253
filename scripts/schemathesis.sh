#!/usr/bin/env bash
# Schemathesis against a running `patron serve`: every operation of /api/v1/openapi.json
# called with generated requests (valid and invalid) as the owner of a small demo chain
# (200 members, no history) on a fresh SQLite database.
#
# Checks: no 5xx (not_a_server_error); every status code, content type and response body
# as the document says (status_code_conformance, content_type_conformance,
# response_schema_conformance). Exits non-zero on any failure.
#
# Bounded for CI (a few minutes): PATRON_SCHEMATHESIS_MAX_EXAMPLES cases per operation
# (default 10) and PATRON_SCHEMATHESIS_SEED (default 2026, so a run can be repeated).
# Schemathesis is installed (pinned) into target/schemathesis-venv; without network it
# prints "SKIPPED: ..." and exits 0, unless PATRON_REQUIRE_SCHEMATHESIS=1. PATRON_BIN tests
# an already built binary instead of building target/debug/patron.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="$PWD/target/schemathesis-venv"
MAX_EXAMPLES=${PATRON_SCHEMATHESIS_MAX_EXAMPLES:-10}
SEED=${PATRON_SCHEMATHESIS_SEED:-2026}

log() { printf '\n== %s\n' "$*"; }

skip() {
  if [ "${PATRON_REQUIRE_SCHEMATHESIS:-}" = 1 ]; then
    echo "schemathesis could not be installed and PATRON_REQUIRE_SCHEMATHESIS=1" >&2
    exit 1
  fi
  echo "SKIPPED: schemathesis could not be installed"
  exit 0
}

log "schemathesis $SCHEMATHESIS_VERSION"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  command -v python3 >/dev/null 2>&1 || skip
  rm -rf "$VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1 || skip
  timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" || skip
fi
"$VENV/bin/schemathesis" --version

log "patron"
# PATRON_BIN: an already built binary to test instead of building one.
if [ -n "${PATRON_BIN:-}" ]; then
  PATRON=$PATRON_BIN
else
  cargo build --locked --quiet -p patron
  PATRON="$PWD/target/debug/patron"
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export PATRON_DATABASE_URL="sqlite://$WORK/patron.db"
export PATRON_KEY_FILE="$WORK/patron.key"
export PATRON_LOG_FORMAT=json
"$PATRON" demo --no-history --members 200 >"$WORK/demo.log" 2>&1 ||
  { cat "$WORK/demo.log"; exit 1; }

"$PATRON" serve --listen 127.0.0.1:0 --jobs-interval 0 >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER_PID=$!
BASE=
for _ in $(seq 1 100); do
  BASE=$(sed -n 's/^patron listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/serve.out" | head -n1)
  [ -n "$BASE" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
  sleep 0.2
done
[ -n "$BASE" ] || { echo "patron serve did not say where it listens" >&2; cat "$WORK/serve.log"; exit 1; }
echo "patron serve at $BASE"

login() {
  curl -sf "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"tenant":"demo","username":"owner","password":"patron-demo","store":"sh-jingansi"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# Real ids for the path parameters (a checkout, a shift, a transaction, coupons, an API
# token...), offered to schemathesis as dictionaries so that most cases reach the
# handlers' logic instead of a 404; one case in five still gets a generated id.
cat >"$WORK/fixtures.py" <<'PYEOF'
import json, os, sys, urllib.request, urllib.error, uuid

base, token, out = os.environ["BASE"], os.environ["TOKEN"], sys.argv[1]

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"fixture {method} {path}: {e.code} {e.read().decode()}")

key = lambda: str(uuid.uuid4())
customers = [c["id"] for c in call("GET", "/customers?per_page=20")["items"]]
cards = []
for c in customers[:10]:
    cards += [k["id"] for k in call("GET", f"/customers/{c}/cards")]
card = cards[0]
top_up = call("POST", f"/cards/{card}/top-ups", {"amount": 50000, "tender": "cash", "idempotency_key": key()})
items = [i["id"] for i in call("GET", "/menu/items")]
checkout = call("POST", "/checkouts", {"lines": [{"item_id": items[0], "quantity": 2}],
                "customer": {"customer_id": customers[0]}, "tenders": [{"method": "cash"}], "idempotency_key": key()})
org = call("POST", "/customers", {"name": "模糊测试公司", "customer_type": "organization"})["id"]
call("PUT", f"/customers/{org}/charge-account", {"credit_limit": 100000})
template = call("POST", "/coupon-templates", {"name": "模糊测试券", "kind": {"type": "cash", "value": 1000},
                "validity": {"type": "days_after_issue", "days": 30}})["id"]
coupons = [c["code"] for c in call("POST", f"/coupon-templates/{template}/issue", {"customer_ids": customers[:3]})]
shift = call("POST", "/shifts", {"opening_float": 10000})["id"]
token_id = call("POST", "/api-tokens", {"name": "fuzz", "scope": ["view_customers"]})["api_token"]["id"]
me = call("GET", "/me")
# Not the owner: the run must not deactivate its own login.
staff = [s["id"] for s in call("GET", "/staff") if s["id"] != me.get("staff_id", me.get("id"))]
txn = top_up.get("txn_id") or top_up.get("transaction_id") or top_up.get("ledger", {}).get("txn_id")

dictionaries = {
    "customers": customers + [org],
    "cards": cards,
    "items": items,
    "categories": [c["id"] for c in call("GET", "/menu/categories")],
    "templates": [t["id"] for t in call("GET", "/coupon-templates")] + [template],
    "rules": [r["id"] for r in call("GET", "/coupon-rules")],
    "coupons": coupons,
    "gifts": [g["id"] for g in call("GET", "/gifts")],
    "staff": staff,
    "tokens": [token_id],
    "checkouts": [checkout["checkout_id"]],
    "shifts": [shift],
    "transactions": [txn] if txn else [],
    "stores": [s["code"] for s in call("GET", "/stores")],
}
bindings = [
    (r"^/customers/\{id\}", "path.id", "customers"),
    (r"^/cards/\{id\}", "path.id", "cards"),
    (r"^/menu/items/\{id\}", "path.id", "items"),
    (r"^/menu/categories/\{id\}", "path.id", "categories"),
    (r"^/coupon-templates/\{id\}", "path.id", "templates"),
    (r"^/coupon-rules/\{id\}", "path.id", "rules"),
    (r"^/coupons/\{code\}", "path.code", "coupons"),
    (r"^/gifts/\{id\}", "path.id", "gifts"),
    (r"^/staff/\{id\}", "path.id", "staff"),
    (r"^/api-tokens/\{id\}", "path.id", "tokens"),
    (r"^/checkouts/\{id\}/(receipt|refunds|reversal)$|^/checkouts/\{id\}$", "path.id", "checkouts"),
    (r"^/shifts/\{id\}", "path.id", "shifts"),
    (r"^/transactions/\{id\}", "path.id", "transactions"),
    (r"^/settlement/days/\{store\}", "path.store", "stores"),
]
with open(out, "w") as f:
    for name, values in dictionaries.items():
        if values:
            f.write(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n\n")
    for regex, param, name in bindings:
        if dictionaries[name]:
            f.write(f"[[operations]]\ninclude-path-regex = {json.dumps(regex)}\n"
                    f"parameters = {{ \"{param}\" = {{ dictionary = \"{name}\", probability = 0.8 }} }}\n\n")
print(f"fixtures: {sum(map(len, dictionaries.values()))} ids in {len(dictionaries)} dictionaries")
PYEOF
FIXTURE_TOKEN=$(login)
BASE="$BASE/api/v1" TOKEN=$FIXTURE_TOKEN python3 "$WORK/fixtures.py" "$WORK/schemathesis.toml"

# One session per run, all taken now: the fuzzed logins soon lock logins from this address.
TOKENS=("$(login)" "$(login)" "$(login)")

run() {
  local token=$1
  shift
  # From the scratch directory: schemathesis keeps its replay data in ./.schemathesis.
  (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run \
    "$BASE/api/v1/openapi.json" \
    --url "$BASE/api/v1" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 30 \
    --generation-database none \
    --suppress-health-check all \
    --no-color \
    "$@")
}

# Printing connects to whatever address the body names: not for a fuzzer.
PRINT='^/checkouts/\{id\}/print$'
# Operations that may end the caller's own session run after the rest, each group with a
# session of its own, so that they cannot turn the other operations into 401s.
STAFF='^/staff/\{id\}(/password)?$'
LOGOUT='^/auth/logout$'

status=0
log "schemathesis: every operation but printing and those that may end the session"
run "${TOKENS[0]}" --exclude-path-regex "$PRINT|$STAFF|$LOGOUT" || status=1
log "schemathesis: staff accounts (may end sessions)"
run "${TOKENS[1]}" --include-path-regex "$STAFF" || status=1
log "schemathesis: logout"
run "${TOKENS[2]}" --include-path-regex "$LOGOUT" || status=1

if grep -q '"level":"ERROR"' "$WORK/serve.log"; then
  log "errors logged by the server"
  grep '"level":"ERROR"' "$WORK/serve.log" | head -n 20
fi
exit $status
