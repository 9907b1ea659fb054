-- pgbench script: the store's append transaction exactly as `store::append` sends it, driven
-- without the Rust client (benches/append.rs and benches/ratios.sh run it at the same server):
-- BEGIN; take the read point (its text, as `store::read_point` does); call fundledger_append
-- with the same twelve arguments (lock keys of the stream and the tag, one event of the same
-- type, data, metadata and tag, one expected stream version, one condition tag after the read
-- point); COMMIT. One difference: each transaction appends to a new stream (expected version 0),
-- where the Rust writers append to their own stream at its exact version; both check the
-- stream's version with the same index probe.
\set v random(1, 9000000000000000000)
BEGIN;
SELECT pg_current_snapshot()::text AS snap \gset
SELECT event_id, event_stream_id, event_stream_version FROM fundledger_append(ARRAY[(:client_id)::bigint, (:client_id)::bigint + 1000], ARRAY['bench-' || :client_id || '-' || :v], ARRAY['BenchHappened'], ARRAY[1], ARRAY['{"n":1}'::jsonb], ARRAY['{"actor":"bench"}'::jsonb], ARRAY[NULL::date], ARRAY[jsonb_build_array('bench:' || :client_id)], ARRAY['bench-' || :client_id || '-' || :v], ARRAY[0::bigint], ARRAY['bench:' || :client_id], (:snap)::pg_snapshot);
COMMIT;
