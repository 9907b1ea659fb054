#!/usr/bin/env bash
# Every ratio of issue 11's table that a store-level run can measure, in ONE run on ONE private
# durable cluster (fsync on, synchronous_commit on), 16 clients each, FUNDLEDGER_BENCH_SECS
# (default 10) per figure:
#   (a) bare durable INSERT (pgbench) into a table shaped like `events`   — the physical limit
#   (b) the same append as store::append, driven by pgbench                — fundledger_append
#   (c) hot row (pgbench): every client on ONE row: lock, insert, update, commit
#   (d) store::append from Rust, submissions and approvals of one pool     — cargo bench
#   (e) the peer: cqrs-es + postgres-es (benches/peer, not in the workspace), its simplest command
# and prints each figure beside its limit and the ratio. Other processes on the machine slow
# every figure of the run alike, so ratios taken within one run partly cancel them.
#
# Run: benches/ratios.sh     (CARGO_TARGET_DIR is honoured; the peer builds under it, in peer/)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUNDLEDGER_BENCH_SECS:-10}
CLIENTS=16
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PEER_TARGET="$CARGO_TARGET_DIR/peer"
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/fl-ratios.XXXXXX")
FIGURES="$ROOT/figures"
# Every way out stops what this script started; the benches' cluster lives under $ROOT/pg.
DATA=$ROOT
source benches/lib/cluster.sh
before_exit() {
    local sock
    sock=$(cat "$ROOT/socket.path" 2>/dev/null || true)
    if [ -n "$sock" ]; then rm -rf "$sock"; fi
}

echo "== building (release): the benches, and the peer (benches/peer, its own workspace)" >&2
run cargo bench -q --no-run --bench append --bench commands
CARGO_TARGET_DIR="$PEER_TARGET" run cargo build -q --release --manifest-path benches/peer/Cargo.toml

export FUNDLEDGER_BENCH_CLUSTER="$ROOT" FUNDLEDGER_BENCH_SECS="$SECS"
echo "== (a) (b) (d) raw append, bare INSERT, the same append via pgbench: $CLIENTS writers, ${SECS}s each" >&2
FUNDLEDGER_BENCH_WRITERS=$CLIENTS run cargo bench -q --bench append >"$ROOT/append.out"
echo "== (c) (d) submissions, approvals of one pool, hot row via pgbench: $CLIENTS clients, ${SECS}s each" >&2
FUNDLEDGER_BENCH_PREFILL=0 run cargo bench -q --bench commands >"$ROOT/commands.out"

echo "== (e) the peer: cqrs-es + postgres-es, $CLIENTS clients, ${SECS}s" >&2
socket_dir="$ROOT/socket"
[ -f "$ROOT/socket.path" ] && socket_dir=$(cat "$ROOT/socket.path")
run "$PEER_TARGET/release/fundledger-bench-peer" \
    "postgres://fundledger@localhost/postgres?host=$socket_dir" "$CLIENTS" "$SECS" >"$ROOT/peer.out"

cat "$ROOT/append.out" "$ROOT/commands.out" "$ROOT/peer.out" | grep '^figure ' >"$FIGURES"
server=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -1)
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $("$server" --version 2>/dev/null || echo PostgreSQL), fsync on, synchronous_commit on, $CLIENTS clients, ${SECS}s per figure"
echo
awk -v c="$CLIENTS" '
    { rate[$2] = $3; p50[$2] = $4; p99[$2] = $5 }
    function row(label, f, limit_label, l, goal) {
        printf "| %s | %s | %s | %s | %s | %s | %.2f | %s |\n", label, rate[f], p50[f], p99[f], limit_label, rate[l], rate[f] / rate[l], goal
    }
    END {
        print "| figure | measured /s | p50 ms | p99 ms | limit, same run | limit /s | ratio | goal |"
        print "|---|---:|---:|---:|---|---:|---:|---:|"
        row("(d) raw append, Rust `store::append` (version check + tag condition)", "raw_append_" c, "(a) bare durable INSERT (pgbench)", "bare_insert_" c, ">= 0.70")
        row("(b) the same append via pgbench (`fundledger_append`, same arguments)", "append_pgbench_" c, "(a) bare durable INSERT", "bare_insert_" c, "-")
        row("(d) raw append, Rust", "raw_append_" c, "(b) the same append via pgbench", "append_pgbench_" c, "-")
        row("(e) peer: cqrs-es + postgres-es, its simplest command", "peer", "(a) bare durable INSERT", "bare_insert_" c, "(the peer to beat)")
        row("(d) raw append, Rust", "raw_append_" c, "(e) the peer", "peer", ">= 1.0")
        row("(d) submission, store level, one at a time (`commands::submit`)", "submissions_0", "(a) bare durable INSERT", "bare_insert_" c, "-")
        row("(d) submission, store level, executed together (`commands::submit_together`, as HTTP does)", "submissions_together_0", "(a) bare durable INSERT", "bare_insert_" c, ">= 0.50, aim 1.0")
        row("(d) approvals on one pool'"'"'s quota, one at a time (`commands::review`)", "approvals_0", "(c) hot row: all clients on ONE row (pgbench)", "hot_row_pgbench_0", "-")
        row("(d) approvals on one pool'"'"'s quota, sharing commits (`commands::group`, as a county batch'"'"'s items run)", "approvals_grouped_0", "(c) hot row: all clients on ONE row (pgbench)", "hot_row_pgbench_0", "-")
        row("(d) approvals on one pool'"'"'s quota, executed together (`commands::together`, as HTTP does)", "approvals_together_0", "(c) hot row: all clients on ONE row (pgbench)", "hot_row_pgbench_0", ">= 1.0")
    }' "$FIGURES"
