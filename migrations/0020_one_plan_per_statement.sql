-- A command's read and append, cheaper per call (issue 11): one plan per statement per
-- session, the read in one function, and an approval's locked read in one round trip.
--
-- 1. One plan per statement. `fundledger_append` and `fundledger_lock_read` are PL/pgSQL:
--    each statement inside is prepared once per session and its plan cached, but the plan
--    cache plans again on every call while a plan made for the call's own arguments looks
--    cheaper than the generic one - and for a query over `unnest()` of its array arguments
--    it always does (a custom plan knows an array has one element, the generic plan guesses
--    a hundred). So the read's query and the append's insert were planned anew on every
--    command. Measured in one run (benches/commands.rs, 16 clients, durable; two alternating
--    pairs): submissions 964-971/s -> 1,266-1,547/s, approvals one at a time 433-491 ->
--    594-606/s, approvals sharing commits 738-763 -> 1,003-1,066/s. Every statement in these
--    functions is written for a generic plan: the lookups are LATERAL with OFFSET 0 (0019) or
--    ordered by their index (0018), and tests/event_log.rs checks that no call scans a whole
--    table. Set at the end of this file; a later CREATE OR REPLACE of either function resets
--    it (as it resets search_path): set it again there. tests/event_log.rs fails if a
--    function lost it.
-- 2. The read is one function, no longer one calling another (below).
-- 3. An approval's read under its pool's lock is one round trip, not three (below).

-- 2. The read in one function: the read of 0016 called the read of 0019 for its events (a
-- second PL/pgSQL call, its rows copied from one result to the next); it now runs that query
-- itself, and the read of 0019, which nothing else calls, is dropped. What it locks, reads and
-- returns is unchanged.
CREATE OR REPLACE FUNCTION fundledger_lock_read(
    p_lock_keys bigint[],
    p_tags      text[],
    p_streams   text[],
    p_id_tag    text,
    p_persons   text[]
) RETURNS TABLE (
    read_point     text,
    tag_ids        bigint[],
    id             bigint,
    "position"     bigint,
    stream_id      text,
    stream_version bigint,
    event_type     text,
    schema_version integer,
    data           jsonb,
    metadata       jsonb,
    tags           text[],
    business_date  date,
    recorded_at    timestamptz,
    data_keys      jsonb
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    -- In the given order (callers sort them), as store::append takes its own: no deadlocks.
    PERFORM pg_advisory_xact_lock(u.k) FROM unnest(p_lock_keys) WITH ORDINALITY AS u(k, n) ORDER BY u.n;
    -- Holding them: the persons' latest data key rows, the read point and the events, in one
    -- statement (one snapshot, taken after the locks were granted). Every lookup is LATERAL
    -- with OFFSET 0: an index lookup each, whatever the planner estimates (0019).
    RETURN QUERY
        SELECT snap.s::text,
               (SELECT coalesce(array_agg(t.event_id ORDER BY t.event_id), '{}')
                  FROM event_tags t WHERE t.tag = p_id_tag),
               x.id, x.position, x.stream_id, x.stream_version, x.event_type, x.schema_version,
               x.data, x.metadata, x.tags, x.business_date, x.recorded_at,
               (SELECT coalesce(jsonb_agg(jsonb_build_object('person_key', k.person_key,
                                                             'generation', k.generation,
                                                             'sealed_key', k.sealed_key)),
                                '[]'::jsonb)
                  FROM (SELECT DISTINCT ON (pk.person_key) pk.person_key, pk.generation,
                               pk.sealed_key
                          FROM person_keys pk WHERE pk.person_key = ANY (p_persons)
                         ORDER BY pk.person_key, pk.generation DESC) k)
          FROM (SELECT pg_current_snapshot() AS s) snap
          LEFT JOIN LATERAL (
                SELECT e.id, l.position, e.stream_id, e.stream_version, e.event_type,
                       e.schema_version, e.data, e.metadata, e.tags, e.business_date,
                       e.recorded_at
                  FROM (SELECT DISTINCT w.event_id
                          FROM (SELECT tg.event_id
                                  FROM unnest(p_tags) AS q(tag)
                                 CROSS JOIN LATERAL (SELECT t.event_id FROM event_tags t
                                                      WHERE t.tag = q.tag OFFSET 0) tg
                                UNION ALL
                                SELECT st.id
                                  FROM unnest(p_streams) AS q(stream)
                                 CROSS JOIN LATERAL (SELECT s.id FROM events s
                                                      WHERE s.stream_id = q.stream OFFSET 0) st
                               ) w
                       ) d
                 CROSS JOIN LATERAL (SELECT * FROM events ev WHERE ev.id = d.event_id OFFSET 0) e
                  LEFT JOIN LATERAL (SELECT lg.position FROM log lg
                                      WHERE lg.event_id = e.id OFFSET 0) l ON true
               ) x ON true
         ORDER BY x.id;
END
$$;

DROP FUNCTION fundledger_lock_read(bigint[], text[], text[], text);

-- 3. An approval's read under its pool's lock in one round trip. Approving against a pool's
-- quota took the pool's lock with the read point (fundledger_lock_read), then read the quota
-- row, then the ids of the published policies: three round trips, all made while holding the
-- lock every other approval of the pool waits for (and in a group, while the whole group
-- waits). This takes the locks, then reads the read point, the quota row and the policies'
-- ids in one statement after them (one snapshot, taken once the locks were granted: the row
-- is what the previous holder committed, and the append's condition covers what comes after).
CREATE FUNCTION fundledger_lock_quota(
    p_lock_keys bigint[],
    p_pool      text,
    p_year      integer,
    p_id_tag    text
) RETURNS TABLE (
    read_point text,
    tag_ids    bigint[],
    found      boolean,
    cap        numeric,
    committed  numeric,
    paid       numeric,
    recovered  numeric
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    -- In the given order (callers sort them), as store::append takes its own: no deadlocks.
    PERFORM pg_advisory_xact_lock(u.k) FROM unnest(p_lock_keys) WITH ORDINALITY AS u(k, n) ORDER BY u.n;
    RETURN QUERY
        SELECT pg_current_snapshot()::text,
               (SELECT coalesce(array_agg(t.event_id ORDER BY t.event_id), '{}')
                  FROM event_tags t WHERE t.tag = p_id_tag),
               q.pool IS NOT NULL, q.cap, q.committed, q.paid, q.recovered
          FROM (SELECT 1) AS one
          LEFT JOIN quota_usage q ON q.pool = p_pool AND q.year = p_year;
END
$$;

REVOKE ALL ON FUNCTION fundledger_lock_quota(bigint[], text, integer, text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT EXECUTE ON FUNCTION fundledger_lock_quota(bigint[], text, integer, text)
            TO fundledger_writer;
    END IF;
END
$$;

-- 1. (above) One plan per statement, for the three functions.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.proname IN ('fundledger_append', 'fundledger_lock_read',
                                  'fundledger_lock_quota')
                AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_generic_plan', f);
    END LOOP;
END
$$;
