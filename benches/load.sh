#!/usr/bin/env bash
# Sustained mixed load on loopback for several minutes (issue 15, "Load"), from processes
# apart from the server: wrk submitting (8 connections, each request a new person with its
# own Idempotency-Key), wrk reading (4 connections: lists, the spending report, liveness),
# 4 live-feed readers (curl on /v1/events/live), and a payer loop (curl) that reviews what
# was submitted, puts it on a notice, closes it and pays it. Every 10 s it samples the
# server's RSS and the number of PostgreSQL backends. At the end it prints: requests and
# errors per kind (an error is any 5xx, or a 4xx the load did not ask for), p50/p99 from wrk,
# RSS and backends first/last/max, and checks the chain.
#
# Run: benches/load.sh        (FUNDLEDGER_LOAD_SECS, default 180; needs wrk, curl, jq)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUNDLEDGER_LOAD_SECS:-180}
PORT=${FUNDLEDGER_BENCH_PORT:-18282}
for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install $tool" >&2; exit 1; }
done

DATA=$(mktemp -d /tmp/fundledger-load.XXXXXX)
chmod 755 "$DATA"
source benches/lib/cluster.sh

run cargo build --release -q
BIN=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/fundledger
fl() { "$BIN" "$@" --data-dir "$DATA"; }
ADMIN=$(fl token create --role admin --person load-admin --label load-admin | tail -1)
CLERK=$(fl token create --role county_clerk --county 371502 --person load-clerk --label load-clerk | tail -1)
REVIEWER=$(fl token create --role county_reviewer --county 371502 --person load-reviewer --label load-reviewer | tail -1)
FINANCE=$(fl token create --role city_finance --pool 371500 --person load-finance --label load-finance | tail -1)
AUDITOR=$(fl token create --role auditor --person load-auditor --label load-auditor | tail -1)
# No per-token rate limit: the load is a few tokens standing for many clerks (tests/http_access.rs
# tests the limiter).
"$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --db-connections 32 --token-rate 0 \
    2>"$DATA/serve.log" &
SERVER=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
post() { # post TOKEN PATH BODY [KEY] -> body on stdout, status in $DATA/status
    local key=${4:-$(cat /proc/sys/kernel/random/uuid)}
    curl -s -o "$DATA/body" -w '%{http_code}' -X POST "$URL$2" -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' -H "Idempotency-Key: $key" -d "$3" >"$DATA/status" || echo 000 >"$DATA/status"
    cat "$DATA/body"
}
post "$ADMIN" /v1/pools '{"code":"371500","name":"聊城市"}' >/dev/null
post "$ADMIN" /v1/counties '{"code":"371502","name":"东昌府区","pool":"371500"}' >/dev/null

echo "== ${SECS}s of mixed load: wrk submitting (8 conns), wrk reading (4 conns), 4 feed readers, a payer" >&2
wrk -t1 -c8 -d"${SECS}s" --timeout 30s --latency -s benches/http/submit.lua "$URL" -- "$CLERK" 0 load \
    >"$DATA/submit.out" 2>&1 &
PIDS+=($!)
wrk -t1 -c4 -d"${SECS}s" --timeout 30s --latency -s benches/http/read.lua "$URL" -- "$ADMIN" \
    >"$DATA/read.out" 2>&1 &
PIDS+=($!)
for i in 1 2 3 4; do
    curl -sN -m "$((SECS + 5))" "$URL/v1/events/live?after=0" -H "Authorization: Bearer $AUDITOR" \
        >"$DATA/feed$i.out" 2>/dev/null &
    PIDS+=($!)
done

payer() {
    local end=$((SECONDS + SECS)) rounds=0 paid=0 errors=0
    while [ $SECONDS -lt $end ]; do
        sleep 2
        ids=$(curl -s "$URL/v1/applications?county=371502&status=submitted&limit=50" \
            -H "Authorization: Bearer $REVIEWER" | jq -c '[.applications[].id]')
        [ "$ids" = "[]" ] || [ -z "$ids" ] && continue
        for id in $(echo "$ids" | jq -r '.[]'); do
            post "$REVIEWER" "/v1/applications/$id/review" '{"decision":"approve"}' >/dev/null
            [ "$(cat "$DATA/status")" = 200 ] || errors=$((errors + 1))
        done
        notice=$(post "$CLERK" /v1/notices "{\"county\":\"371502\",\"starts_on\":\"2024-11-04\",\"application_ids\":$ids}" | jq -r .id)
        [ "$(cat "$DATA/status")" = 201 ] || { errors=$((errors + 1)); continue; }
        post "$CLERK" "/v1/notices/$notice/close" '{}' >/dev/null
        [ "$(cat "$DATA/status")" = 200 ] || { errors=$((errors + 1)); continue; }
        n=$(post "$FINANCE" /v1/payouts "{\"application_ids\":$ids,\"paid_on\":\"$(date +%F)\"}" | jq '.payouts | length')
        [ "$(cat "$DATA/status")" = 201 ] || { errors=$((errors + 1)); continue; }
        paid=$((paid + n)); rounds=$((rounds + 1))
    done
    echo "payer: $rounds rounds, $paid payouts, $errors errors" >"$DATA/payer.out"
}
payer &
PIDS+=($!)

backends() { ps -eo args | grep -c '^postgres: .*fundledger' || true; }
rss_kb() { ps -o rss= -p "$SERVER" | tr -d ' '; }
echo "t_s rss_kb backends" >"$DATA/samples"
start=$SECONDS
while [ $((SECONDS - start)) -lt "$SECS" ]; do
    echo "$((SECONDS - start)) $(rss_kb) $(backends)" >>"$DATA/samples"
    sleep 10
done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()
echo "$((SECONDS - start)) $(rss_kb) $(backends)" >>"$DATA/samples"

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ${SECS}s, fsync on"
echo "-- submissions (wrk, 8 connections):"
grep -E 'Requests/sec|requests in|Non-2xx|Socket errors|^ +50%|^ +99%' "$DATA/submit.out" || true
echo "-- reads (wrk, 4 connections):"
grep -E 'Requests/sec|requests in|Non-2xx|Socket errors|^ +50%|^ +99%' "$DATA/read.out" || true
echo "-- $(cat "$DATA/payer.out")"
echo "-- feed readers: events received $(for i in 1 2 3 4; do grep -c '^data:' "$DATA/feed$i.out" || true; done | tr '\n' ' ')"
echo "-- answers other than 2xx in the server log, by route and status:"
grep -oE 'route=[^ ]+}?: fundledger::http: request status=[0-9]+' "$DATA/serve.log" | grep -v 'status=2' |
    sed -E 's/}?: fundledger::http: request / /' | sort | uniq -c | sort -rn | head -10 || true
echo "-- server log: 5xx $(grep -cE 'status=5[0-9][0-9]' "$DATA/serve.log" || true), 4xx $(grep -cE 'status=4[0-9][0-9]' "$DATA/serve.log" || true)"
echo "-- samples every 10 s (RSS of the server in kB, PostgreSQL backends; the pool holds at most 32):"
awk 'NR == 1 { next } { if (!f) { f = $2; fb = $3 } l = $2; lb = $3; if ($2 > m) m = $2; if ($3 > mb) mb = $3 }
     END { printf "   rss first %d last %d max %d kB; backends first %d last %d max %d\n", f, l, m, fb, lb, mb }' "$DATA/samples"
awk 'NR > 1 { printf "%s%s", sep, $2; sep = " " } END { print "" }' "$DATA/samples" | fold -s -w 100 | sed 's/^/   rss: /'
awk 'NR > 1 { printf "%s%s", sep, $3; sep = " " } END { print "" }' "$DATA/samples" | fold -s -w 100 | sed 's/^/   backends: /'
echo "-- the chain: $(fl verify 2>/dev/null | jq -c '{ok, events_checked, head_position}')"
