#!/usr/bin/env bash
# Schemathesis against the server's own /openapi.json: builds the release binary, starts
# `fundledger serve` on a free port against a private cluster of its own, registers a pool and
# a county, makes a token for every role, and runs `schemathesis run --checks all` once per
# token. A slow suite (minutes): not run by .ci/run or cargo test. README.md, "Slow suites".
#
# Needs schemathesis 4 (`pip install schemathesis`, e.g. in a venv: SCHEMATHESIS=/path/to/bin/
# schemathesis), curl and jq. Environment: FUNDLEDGER_ST_EXAMPLES (cases per operation and
# phase, default 50), FUNDLEDGER_ST_SEED (default 1: runs are repeatable), FUNDLEDGER_ST_ROLES
# (default: all five). Exit status: 0 when every run passes every check.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SCHEMATHESIS=${SCHEMATHESIS:-schemathesis}
EXAMPLES=${FUNDLEDGER_ST_EXAMPLES:-50}
SEED=${FUNDLEDGER_ST_SEED:-1}
ROLES=${FUNDLEDGER_ST_ROLES:-admin auditor city_finance county_clerk county_reviewer}
command -v "$SCHEMATHESIS" >/dev/null ||
    { echo "schemathesis is needed: pip install schemathesis (or set SCHEMATHESIS=…)" >&2; exit 1; }
for tool in curl jq; do command -v $tool >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done

# Every way out stops what this script started: the command running in the foreground, the
# server, and the private cluster under $DATA.
DATA=$(mktemp -d /tmp/fundledger-schemathesis.XXXXXX)
chmod 755 "$DATA"
source benches/lib/cluster.sh
before_exit() {
    if [ "$1" -ne 0 ] && [ -f "$DATA/serve.log" ]; then
        echo "== last lines of the server's log:" >&2
        tail -5 "$DATA/serve.log" >&2
    fi
}

run cargo build --release -q
BIN=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/fundledger
fl() { "$BIN" "$@" --data-dir "$DATA"; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

# The pool and county every scoped token acts for.
POOL=370800
COUNTY=370811
declare -A TOKEN
TOKEN[admin]=$(fl token create --role admin --person st-admin --label st-admin | tail -1)
TOKEN[auditor]=$(fl token create --role auditor --person st-auditor --label st-auditor | tail -1)
TOKEN[city_finance]=$(fl token create --role city_finance --pool $POOL --person st-finance --label st-finance | tail -1)
TOKEN[county_clerk]=$(fl token create --role county_clerk --county $COUNTY --person st-clerk --label st-clerk | tail -1)
TOKEN[county_reviewer]=$(fl token create --role county_reviewer --county $COUNTY --person st-reviewer --label st-reviewer | tail -1)

# No per-token rate limit: the run tests the API, not the limiter (tests/http_access.rs does).
# The binary itself, not through `fl`: $SERVER must be the server, not a subshell around it.
"$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --token-rate 0 2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 150); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$BASE/readyz" >/dev/null || { echo "the server did not become ready" >&2; exit 1; }
post() { curl -sf -X POST "$BASE$1" -H "Authorization: Bearer ${TOKEN[admin]}" \
  -H 'Content-Type: application/json' -d "$2" >/dev/null; }
post /v1/pools "{\"code\":\"$POOL\",\"name\":\"济宁市\"}"
post /v1/counties "{\"code\":\"$COUNTY\",\"name\":\"任城区\",\"pool\":\"$POOL\"}"

# What every run shares. /v1/events/live is left out: it is a stream that does not end, so
# every case would only wait for the client's timeout (tests/http_contract.rs reads it).
export SCHEMATHESIS_HOOKS="$ROOT/tests/schemathesis/hooks.py"
CONFIG="$ROOT/tests/schemathesis/schemathesis.toml"
failed=0
summary=""
for role in $ROLES; do
    echo
    echo "== schemathesis as $role"
    out="$DATA/$role.out"
    set +e
    run "$SCHEMATHESIS" --config-file "$CONFIG" run "$BASE/openapi.json" \
        --checks all \
        -H "Authorization: Bearer ${TOKEN[$role]}" \
        --exclude-path /v1/events/live \
        --max-examples "$EXAMPLES" --seed "$SEED" --no-color >"$out" 2>&1
    status=$?
    set -e
    cat "$out"
    # "Selected: 38/39" and "4547 generated, 4547 passed, 18 skipped" (or "…, 3 found 3 unique
    # failures, …") of schemathesis's summary.
    operations=$(grep -oE 'Selected: [0-9]+/[0-9]+' "$out" | head -1 | cut -d' ' -f2)
    cases=$(grep -E '^ +[0-9]+ generated' "$out" | head -1 | sed 's/^ *//')
    summary+="$role: exit $status, operations ${operations:-?}, cases: ${cases:-?}"$'\n'
    [ "$status" -eq 0 ] || failed=1
done
echo
echo "== summary (seed $SEED, $EXAMPLES examples per operation and phase)"
printf '%s' "$summary"
echo "== 5xx in the server's log: $(grep -cE 'status=5[0-9][0-9]' "$DATA/serve.log" || true)"
exit $failed
