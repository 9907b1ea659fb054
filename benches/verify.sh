#!/usr/bin/env bash
# Verification at the speed of reading (issue 11, item 5), every figure in ONE run on ONE
# private cluster: FUNDLEDGER_BENCH_EVENTS (default 200,000) events of a submission's size,
# inserted with generate_series and sequenced with the chain, then, twice each:
#   - `fundledger verify` (release): every canonical text and hash recomputed from the rows;
#   - floor: psql reading the same rows and columns verify reads (text COPY to /dev/null);
#   - floor: sha256sum over the canonical text of the same events (the bytes the chain hashes);
# and prints events/s beside each floor and the ratio (issue 11's goal: 0.50 of sha256sum).
#
# FUNDLEDGER_BENCH_COMPARE=/path/to/an/older/fundledger measures that binary's verify too, in
# the same run (a before and after).
#
# Run: benches/verify.sh      (CARGO_TARGET_DIR is honoured; needs jq)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${FUNDLEDGER_BENCH_EVENTS:-200000}
DATA=$(mktemp -d /tmp/fundledger-verify.XXXXXX)
chmod 755 "$DATA"
source benches/lib/cluster.sh

echo "== building (release)" >&2
run cargo build --release -q
BIN=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/fundledger
fl() { "$BIN" "$@" --data-dir "$DATA"; }

# `verify` on an empty ledger makes the private cluster and migrates it; the cluster is then
# started here, so that every later `verify` finds it running and leaves it so.
fl verify >/dev/null 2>&1
as_owner "$DATA/pg" "$(pg_ctl_bin)" start -w -D "$DATA/pg" -l "$DATA/pg/server.log" >/dev/null
socket_dir="$DATA/socket"
[ -f "$DATA/socket.path" ] && socket_dir=$(cat "$DATA/socket.path")
psql_bin=$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -1 || command -v psql)
sql() { as_owner "$DATA/pg" "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -U fundledger -d fundledger "$@"; }

echo "== inserting and sequencing $N events" >&2
sql -c "INSERT INTO events (stream_id, stream_version, event_type, schema_version, data, metadata, tags, business_date)
        SELECT 'application-' || g, 1, 'ApplicationSubmitted', 1,
               jsonb_build_object('application', 'a' || g, 'program', 'skill_upgrade',
                   'pool', '371500', 'county', '371502', 'year', 2024, 'amount', '1500.00',
                   'funding', 'expansion_pilot', 'name_masked', '王*五',
                   'id_number_sealed', md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text),
                   'occupation', '6-18-01-01', 'level', 4, 'certificate', 'S2024' || lpad(g::text, 12, '0'),
                   'certified_on', '2024-05-06', 'submitted_on', '2024-10-20'),
               jsonb_build_object('actor', '经办 李', 'person', 'clerk-371502', 'request_id', md5(g::text)),
               ARRAY['person:p' || g, 'pool:371500/year:2024'], '2024-10-20'
          FROM generate_series(1, $N) g"
for _ in $(seq 1 100); do
    sql -At -c "SELECT fundledger_sequence()" >/dev/null
    [ "$(sql -At -c "SELECT count(*) FROM log")" = "$N" ] && break
done
[ "$(sql -At -c "SELECT count(*) FROM log")" = "$N" ] || { echo "not every event was sequenced" >&2; exit 1; }

columns="l.position, e.id IS NOT NULL, coalesce(e.stream_id, ''), coalesce(e.stream_version, 0),
         coalesce(e.event_type, ''), coalesce(e.schema_version, 0), e.business_date,
         coalesce(e.recorded_at, 'epoch'), coalesce(e.tags, '{}'), coalesce(e.data::text, ''),
         coalesce(e.metadata::text, ''), l.prev_hash, l.hash"
sql -At -c "SELECT convert_from(fundledger_canonical(l.position, e), 'UTF8')
              FROM log l JOIN events e ON e.id = l.event_id ORDER BY l.position" >"$DATA/canonical.txt"
bytes=$(stat -c %s "$DATA/canonical.txt")

now() { date +%s.%N; }
rate() { awk -v n="$N" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", n / (b - a) }'; }
declare -A best
measure() { # measure NAME CMD…: the better of two runs, in events/s
    local name=$1 a b r i
    shift
    for i in 1 2; do
        a=$(now)
        "$@" >/dev/null 2>&1
        b=$(now)
        r=$(rate "$a" "$b")
        echo "   $name: run $i: $r events/s" >&2
        if [ -z "${best[$name]:-}" ] || [ "$r" -gt "${best[$name]}" ]; then best[$name]=$r; fi
    done
}
echo "== measuring (each twice)" >&2
measure verify fl verify
if [ -n "${FUNDLEDGER_BENCH_COMPARE:-}" ]; then
    measure before "$FUNDLEDGER_BENCH_COMPARE" verify --data-dir "$DATA"
fi
measure read sql -c "COPY (SELECT $columns FROM log l LEFT JOIN events e ON e.id = l.event_id ORDER BY l.position) TO STDOUT" -o /dev/null
measure sha256sum sha256sum "$DATA/canonical.txt"
fl verify 2>/dev/null | jq -e '.ok' >/dev/null || { echo "the chain did not verify" >&2; exit 1; }

server=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -1)
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $("$server" --version 2>/dev/null || echo PostgreSQL), $N events, $((bytes / N)) bytes of canonical text each on average"
echo
echo "| figure | events/s | limit, same run | limit events/s | ratio | goal |"
echo "|---|---:|---|---:|---:|---:|"
row() { awk -v l="$1" -v f="$2" -v ll="$3" -v lf="$4" -v g="$5" 'BEGIN { printf "| %s | %d | %s | %d | %.2f | %s |\n", l, f, ll, lf, f / lf, g }'; }
row '`fundledger verify`' "${best[verify]}" 'sha256sum over the canonical text' "${best[sha256sum]}" '>= 0.50'
row '`fundledger verify`' "${best[verify]}" 'psql reading the same rows and columns' "${best[read]}" '-'
if [ -n "${best[before]:-}" ]; then
    row "\`verify\` of $FUNDLEDGER_BENCH_COMPARE" "${best[before]}" 'sha256sum over the canonical text' "${best[sha256sum]}" '-'
    row '`fundledger verify`' "${best[verify]}" "\`verify\` of $FUNDLEDGER_BENCH_COMPARE" "${best[before]}" '-'
fi
