# Sourced, never run: what the slow scripts (benches/http.sh, benches/load.sh,
# benches/ratios.sh, tests/schemathesis/run.sh) share to stop, on every way out (the end, an
# error, Ctrl-C, SIGTERM, SIGHUP), everything they started.
#
# Set DATA (the script's scratch directory, removed at the end; a private cluster under
# $DATA/pg is stopped) before sourcing. Then the script may set:
#   SERVER         the pid of a `fundledger serve` (SIGTERM: it finishes its requests and stops
#                  the private cluster it started);
#   PIDS           background helpers (each stopped with its descendants);
#   STOP_CLUSTERS  more data directories of clusters to stop;
#   before_exit    a function, called with the exit status before the clusters are stopped.
# and runs long commands with `run CMD…` (in the background, waited for: a trapped signal
# interrupts `wait` at once, where it would wait for a foreground command to end first).

SERVER=
CHILD=
PIDS=()
STOP_CLUSTERS=()

pg_ctl_bin() { ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || command -v pg_ctl; }

# as_owner PGDATA CMD…: PostgreSQL's tools run as the account that owns the cluster (the
# private cluster runs under its own system account when started by root).
as_owner() {
    local owner
    owner=$(stat -c %U "$1")
    shift
    if [ "$(id -un)" = "$owner" ]; then "$@"; else runuser -u "$owner" -- "$@"; fi
}

cluster_running() { [ -f "$1/postmaster.pid" ] && as_owner "$1" "$(pg_ctl_bin)" status -D "$1" >/dev/null 2>&1; }

stop_cluster() {
    if cluster_running "$1"; then as_owner "$1" "$(pg_ctl_bin)" stop -D "$1" -m fast >/dev/null 2>&1 || true; fi
}

# The process and its descendants, by parent id: nothing this script did not start.
kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
    kill "$1" 2>/dev/null || true
}

run() {
    "$@" &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=
    return "$status"
}

cleanup() {
    local status=$? pid pg
    trap - EXIT INT TERM HUP
    if [ -n "$CHILD" ]; then kill_tree "$CHILD"; wait "$CHILD" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do kill_tree "$pid"; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    if declare -F before_exit >/dev/null; then before_exit "$status" || true; fi
    stop_cluster "$DATA/pg"
    for pg in "${STOP_CLUSTERS[@]}"; do stop_cluster "$pg"; done
    rm -rf "$DATA"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
