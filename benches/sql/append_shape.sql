-- pgbench script: the transaction shape of one append (BEGIN; take a read point; append one
-- event with a tag condition; COMMIT), each client on its own stream and tag, driven without
-- the Rust client. See BENCHMARKS.md for how to run it against the bench cluster.
BEGIN;
SELECT pg_current_snapshot();
SELECT * FROM fundledger_append(ARRAY[(:client_id)::bigint, (:client_id)::bigint + 1000], ARRAY['cs-' || :client_id], ARRAY['BenchHappened'], ARRAY[1], ARRAY['{"n":1}'::jsonb], ARRAY['{"actor":"bench"}'::jsonb], ARRAY[NULL::date], ARRAY[jsonb_build_array('cbench:' || :client_id)], ARRAY[]::text[], ARRAY[]::bigint[], ARRAY['cbench:' || :client_id], pg_current_snapshot());
COMMIT;
