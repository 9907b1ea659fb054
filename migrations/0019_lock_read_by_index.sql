-- A command's read must not cost more the longer the log grows (issue 11).
--
-- `fundledger_lock_read` (0013; 0016 calls it) reads the events carrying some tags or in some
-- streams. Its query joined `events` and `log` to the ids of those rows, and the planner,
-- which estimates `= ANY (array)` and the ids of a sub-select without knowing how few they
-- are (no statistics yet on a young ledger, or a cached generic plan), chose hash joins over
-- sequential scans of `events` and `log`. Measured during HTTP submissions on a ledger of
-- 9,156 events: one sequential scan of each table per submission (pg_stat_user_tables),
-- 2.2-8.9 ms per read against 0.14 ms by the indexes, and growing with the log.
--
-- The read below takes each tag's and each stream's rows, then each event and its position,
-- by one index lookup each, whatever the planner estimates: the subqueries are LATERAL and
-- carry `OFFSET 0`, which keeps PostgreSQL from flattening them into a join it may then do by
-- hashing whole tables. tests/event_log.rs checks that no call scans either table.
--
-- Only the read's query differs from 0013; CREATE OR REPLACE keeps the grants.
CREATE OR REPLACE FUNCTION fundledger_lock_read(
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
