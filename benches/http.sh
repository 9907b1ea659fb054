#!/usr/bin/env bash
# HTTP load: submissions/s and latency at 16 concurrent keep-alive connections (wrk), single
# requests and /v1/batch, then approvals/s of the submitted applications (one pool's quota),
# against `fundledger serve` (release build) on a private cluster; then the store-level figures
# of `cargo bench --bench commands` in the same run, so the cost of the HTTP layer shows. Needs
# wrk (apt-get install wrk), curl and jq.
#
# Run: benches/http.sh            (FUNDLEDGER_BENCH_SECS per measurement, default 20;
#                                  FUNDLEDGER_BENCH_BATCH submissions per batch, default 100;
#                                  FUNDLEDGER_BENCH_COMPARE=/path/to/an/older/fundledger: its
#                                  single submissions and approvals too, on a cluster of its
#                                  own, same run)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUNDLEDGER_BENCH_SECS:-20}
BATCH=${FUNDLEDGER_BENCH_BATCH:-100}
PORT=${FUNDLEDGER_BENCH_PORT:-18181}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

# Every way out stops what this script started: the server, the command running in the
# foreground, and the private clusters it created or found stopped (the server's under $DATA;
# `cargo bench`'s, shared, only if it was stopped).
DATA=$(mktemp -d /tmp/fundledger-http-bench.XXXXXX)
chmod 755 "$DATA"
source benches/lib/cluster.sh
BENCH_CLUSTER=${TMPDIR:-/tmp}/fundledger-bench-cluster/pg
cluster_running "$BENCH_CLUSTER" || STOP_CLUSTERS+=("$BENCH_CLUSTER")

run cargo build --release -q
BIN=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/fundledger
fl() { "$BIN" "$@" --data-dir "$DATA"; }
fl policy publish policies/*.toml >/dev/null
ADMIN=$(fl token create --role admin --person bench-admin --label bench-admin | tail -1)
CLERK=$(fl token create --role county_clerk --county 371502 --person bench-clerk --label bench-clerk | tail -1)
FINANCE=$(fl token create --role city_finance --pool 371500 --person bench-finance --label bench-finance | tail -1)
REVIEWER=$(fl token create --role county_reviewer --county 371502 --person bench-reviewer --label bench-reviewer | tail -1)
# The binary itself, not through `fl`: $SERVER must be the server, not a subshell around it.
# No per-token rate limit: the load is a few tokens standing for many clerks (tests/http_access.rs
# tests the limiter).
"$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --db-connections 32 --token-rate 0 \
    2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
post() { curl -sf -X POST "http://127.0.0.1:${3:-$PORT}$1" -H "Authorization: Bearer ${4:-$ADMIN}" \
  -H 'Content-Type: application/json' -d "$2" >/dev/null; }
post /v1/pools '{"code":"371500","name":"聊城市"}'
post /v1/counties '{"code":"371502","name":"东昌府区","pool":"371500"}'
# A quota large enough for every approval: 15% of 1,000,000,000.00.
quota() {
    post /v1/pools/371500/historical-balance \
        '{"as_of":"2023-12-31","amount":"1000000000.00","document":"聊人社字〔2024〕1号"}' "$1" "$2"
    post /v1/pools/371500/quotas \
        '{"year":2024,"ratio":"0.15","filing_document":"鲁人社字〔2024〕9号"}' "$1" "$2"
}
quota "$PORT" "$FINANCE"

# approvals DATA_DIR PORT REVIEWER_TOKEN: approves the applications submitted so far, 16
# connections, for half of ${SECS}s (so that the submitted applications last); prints wrk's
# summary and the approvals recorded per second.
APPROVE_SECS=$(( (SECS + 1) / 2 ))
approvals() {
    as_owner "$1/pg" "$(dirname "$(pg_ctl_bin)")/psql" -h "$1/socket" -U fundledger -d fundledger -Atc \
        "SELECT application FROM application_status WHERE status = 'submitted'" >"$1/submitted.txt"
    local submitted
    submitted=$(wc -l <"$1/submitted.txt")
    echo "($submitted applications submitted to approve)"
    run wrk -t2 -c16 -d"${APPROVE_SECS}s" --timeout 30s --latency -s benches/http/review.lua \
      "http://127.0.0.1:$2" -- "$3" "$1/submitted.txt"
    local approved
    approved=$(grep 'route=/v1/applications/{id}/review' "$1/serve.log" | grep -c 'status=200' || true)
    echo "== approvals recorded (200): $approved in ${APPROVE_SECS}s = $((approved / APPROVE_SECS))/s"
    if [ "$approved" -ge "$submitted" ]; then
        echo "   (every submitted application was approved before the time ran out: a lower bound)"
    fi
}


echo "== POST /v1/applications, 16 connections, ${SECS}s (each with its own Idempotency-Key)"
run wrk -t2 -c16 -d"${SECS}s" --timeout 30s --latency -s benches/http/submit.lua \
  "http://127.0.0.1:$PORT" -- "$CLERK" 0 single
echo
echo "== POST /v1/batch with $BATCH submissions each, 16 connections, ${SECS}s"
run wrk -t2 -c16 -d"${SECS}s" --timeout 60s --latency -s benches/http/submit.lua \
  "http://127.0.0.1:$PORT" -- "$CLERK" "$BATCH" batch
echo
# wrk stops sending when its time is up, but the batches it sent last still run in the server
# for a second or two: they finish before the approvals start.
sleep 5
echo "== POST /v1/applications/{id}/review (approve), 16 connections, ${APPROVE_SECS}s (one pool's quota)"
approvals "$DATA" "$PORT" "$REVIEWER"
echo
echo "== submissions recorded (201) in the server log:"
grep 'route=/v1/applications' "$DATA/serve.log" | grep -c 'status=201' || true
echo "== refused or failed requests in the server log (should be 0):"
# (grep finds nothing when all went well: that must not end the script under pipefail)
grep -E 'status=(4|5)[0-9][0-9]' "$DATA/serve.log" | grep -vc 'route=/v1/batch' || true
# …and which, by route and status, with one example line each.
grep -E 'status=(4|5)[0-9][0-9]' "$DATA/serve.log" | grep -oE 'route=[^ ]+ .*status=[0-9]+' |
    sed -E 's/ .* status=/ status=/' | sort | uniq -c || true
grep -E 'status=(4|5)[0-9][0-9]' "$DATA/serve.log" | head -2 || true
echo
echo "== store level, same machine: cargo bench --bench commands (submissions and approvals, empty log)"
bench_commands() {
    FUNDLEDGER_BENCH_PREFILL=0 FUNDLEDGER_BENCH_SECS=$SECS cargo bench -q --bench commands 2>&1 |
        grep -iE 'submission|approval|pgbench' || true
}
run bench_commands

if [ -n "${FUNDLEDGER_BENCH_COMPARE:-}" ]; then
    # The main server stops first: the compared one has the machine to itself, as it had.
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
    OLD="$DATA/compare"
    mkdir -p "$OLD"
    chmod 755 "$OLD"
    STOP_CLUSTERS+=("$OLD/pg")
    old() { "$FUNDLEDGER_BENCH_COMPARE" "$@" --data-dir "$OLD"; }
    old policy publish policies/*.toml >/dev/null
    OLD_ADMIN=$(old token create --role admin --person bench-admin --label bench-admin | tail -1)
    OLD_CLERK=$(old token create --role county_clerk --county 371502 --person bench-clerk --label bench-clerk | tail -1)
    OLD_FINANCE=$(old token create --role city_finance --pool 371500 --person bench-finance --label bench-finance | tail -1)
    OLD_REVIEWER=$(old token create --role county_reviewer --county 371502 --person bench-reviewer --label bench-reviewer | tail -1)
    OLD_PORT=$((PORT + 1))
    "$FUNDLEDGER_BENCH_COMPARE" serve --data-dir "$OLD" --listen "127.0.0.1:$OLD_PORT" \
        --db-connections 32 --token-rate 0 2>"$OLD/serve.log" &
    SERVER=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$OLD_PORT/readyz" >/dev/null && break; sleep 0.2; done
    post /v1/pools '{"code":"371500","name":"聊城市"}' "$OLD_PORT" "$OLD_ADMIN"
    post /v1/counties '{"code":"371502","name":"东昌府区","pool":"371500"}' "$OLD_PORT" "$OLD_ADMIN"
    quota "$OLD_PORT" "$OLD_FINANCE"
    echo
    echo "== the same single submissions against $FUNDLEDGER_BENCH_COMPARE, 16 connections, ${SECS}s"
    run wrk -t2 -c16 -d"${SECS}s" --timeout 30s --latency -s benches/http/submit.lua \
      "http://127.0.0.1:$OLD_PORT" -- "$OLD_CLERK" 0 single
    echo "== the same approvals against $FUNDLEDGER_BENCH_COMPARE, 16 connections, ${APPROVE_SECS}s"
    approvals "$OLD" "$OLD_PORT" "$OLD_REVIEWER"
    echo "== its refused or failed requests (should be 0):"
    grep -E 'status=(4|5)[0-9][0-9]' "$OLD/serve.log" | grep -vc 'route=/v1/batch' || true
fi
