-- A command's whole read in one round trip: take its advisory locks, then read, in one call.
--
-- In READ COMMITTED a statement reads under the snapshot taken when it starts, so a lock taken
-- by the same SQL statement as the read would be waited for with a snapshot from BEFORE the
-- wait: the read would miss what the previous holder committed, and the append's condition
-- would then refuse it (a wasted attempt). A PL/pgSQL function that is VOLATILE takes a fresh
-- snapshot for each statement inside it: the read below runs after the locks are held and
-- sees everything committed before it got them.
--
-- Returns one row per event carrying any of `p_tags` or in any of `p_streams` (ordered by id),
-- or a single row of NULL event columns when there is none. Every row carries the read point
-- (the snapshot the events were read under: the condition of the append that follows) and the
-- ids of the events carrying `p_id_tag` (the published policies: a cache key), both read in the
-- same statement as the events.
CREATE FUNCTION fundledger_lock_read(
    p_lock_keys bigint[],
    p_tags      text[],
    p_streams   text[],
    p_id_tag    text
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
    recorded_at    timestamptz
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    -- In the given order (callers sort them), as store::append takes its own: no deadlocks.
    PERFORM pg_advisory_xact_lock(u.k) FROM unnest(p_lock_keys) WITH ORDINALITY AS u(k, n) ORDER BY u.n;
    RETURN QUERY
        SELECT snap.s::text,
               (SELECT coalesce(array_agg(t.event_id ORDER BY t.event_id), '{}')
                  FROM event_tags t WHERE t.tag = p_id_tag),
               x.id, x.position, x.stream_id, x.stream_version, x.event_type, x.schema_version,
               x.data, x.metadata, x.tags, x.business_date, x.recorded_at
          FROM (SELECT pg_current_snapshot() AS s) snap
          LEFT JOIN LATERAL (
                SELECT e.id, l.position, e.stream_id, e.stream_version, e.event_type,
                       e.schema_version, e.data, e.metadata, e.tags, e.business_date, e.recorded_at
                  FROM events e LEFT JOIN log l ON l.event_id = e.id
                 -- Index ranges only: the tags' rows, and the streams' rows.
                 WHERE e.id IN (SELECT t.event_id FROM event_tags t WHERE t.tag = ANY (p_tags)
                                UNION
                                SELECT s.id FROM events s WHERE s.stream_id = ANY (p_streams))
               ) x ON true
         ORDER BY x.id;
END
$$;

-- Reads only what its caller may read (SECURITY INVOKER); still, only the writer needs it.
REVOKE ALL ON FUNCTION fundledger_lock_read(bigint[], text[], text[], text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT EXECUTE ON FUNCTION fundledger_lock_read(bigint[], text[], text[], text)
            TO fundledger_writer;
    END IF;
END
$$;
