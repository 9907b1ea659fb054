#!/usr/bin/env bash
# HTTP load: submissions/s and latency at 16 concurrent keep-alive connections (wrk), single
# requests and /v1/batch, against `fundledger serve` (release build) on a private cluster;
# then the store-level submissions figure of `cargo bench --bench commands` in the same run,
# so the cost of the HTTP layer shows. Needs wrk (apt-get install wrk), curl and jq.
#
# Run: benches/http.sh            (FUNDLEDGER_BENCH_SECS per measurement, default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUNDLEDGER_BENCH_SECS:-20}
PORT=${FUNDLEDGER_BENCH_PORT:-18181}
DATA=$(mktemp -d /tmp/fundledger-http-bench.XXXXXX)
chmod 755 "$DATA"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release -q
BIN=${CARGO_TARGET_DIR:-target}/release/fundledger
fl() { "$BIN" "$@" --data-dir "$DATA"; }
fl policy publish policies/*.toml >/dev/null
ADMIN=$(fl token create --role admin --label bench-admin | tail -1)
CLERK=$(fl token create --role county_clerk --county 371502 --label bench-clerk | tail -1)
fl serve --listen "127.0.0.1:$PORT" --db-connections 32 2>"$DATA/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
post() { curl -sf -X POST "http://127.0.0.1:$PORT$1" -H "Authorization: Bearer $ADMIN" \
  -H 'Content-Type: application/json' -d "$2" >/dev/null; }
post /v1/pools '{"code":"371500","name":"聊城市"}'
post /v1/counties '{"code":"371502","name":"东昌府区","pool":"371500"}'


echo "== POST /v1/applications, 16 connections, ${SECS}s (each with its own Idempotency-Key)"
wrk -t2 -c16 -d"${SECS}s" --timeout 30s --latency -s benches/http/submit.lua \
  "http://127.0.0.1:$PORT" -- "$CLERK" 0 single
echo
echo "== POST /v1/batch with 100 submissions each, 16 connections, ${SECS}s"
wrk -t2 -c16 -d"${SECS}s" --timeout 60s --latency -s benches/http/submit.lua \
  "http://127.0.0.1:$PORT" -- "$CLERK" 100 batch
echo
echo "== submissions recorded (201) in the server log:"
grep 'route=/v1/applications' "$DATA/serve.log" | grep -c 'status=201' || true
echo "== refused or failed requests in the server log (should be 0):"
grep -E 'status=(4|5)[0-9][0-9]' "$DATA/serve.log" | grep -v 'route=/v1/batch' | wc -l
echo
echo "== store level, same machine: cargo bench --bench commands (submissions, empty log)"
FUNDLEDGER_BENCH_PREFILL=0 FUNDLEDGER_BENCH_SECS=$SECS cargo bench -q --bench commands 2>&1 | grep -iE 'submission|pgbench' || true
