-- The event log: the ground truth of fundledger. Everything else is derived from it.
--
-- Never edit this file once applied anywhere: sqlx checks its checksum. Change the schema
-- with a new migration.

CREATE TABLE events (
    -- Global order of all events. Assigned under the append lock (see fundledger_append), so
    -- positions are gapless and increase in commit order: a reader that has seen position N
    -- has seen every event at or below N, for good.
    position        bigint      PRIMARY KEY,
    stream_id       text        NOT NULL CHECK (stream_id <> ''),
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_type      text        NOT NULL CHECK (event_type <> ''),
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    data            jsonb       NOT NULL,
    -- actor, pool, county, request id, idempotency key, causation and correlation ids.
    metadata        jsonb       NOT NULL DEFAULT '{}',
    -- Consistency tags such as 'pool:371500/year:2024' (see event_tags).
    tags            text[]      NOT NULL DEFAULT '{}',
    -- The date the fact happened in the world (Asia/Shanghai), as opposed to recorded_at.
    business_date   date,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction, for diagnostics ("which events did one command write").
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- Audit hash chain: hash = H(canonical encoding of this event, prev_hash). Filled by the
    -- append once the chain is introduced; NULL on rows written before that.
    prev_hash       bytea,
    hash            bytea,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- One row per (tag, event): lets the append check "no event with these tags after position P"
-- with a short index range scan whose cost does not grow with the log.
CREATE TABLE event_tags (
    tag      text   NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tag, position)
);

-- Append-only, enforced by the database. Statement-level, so even an UPDATE or DELETE that
-- matches no row is refused: nobody gets to probe what would have happened.
CREATE FUNCTION fundledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'FL010',
              HINT = 'record a correcting event (for example a recovery) instead';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change();
CREATE TRIGGER event_tags_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON event_tags
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change();

-- Appends events atomically, in one round trip, under the append lock.
--
-- Per event (arrays of equal length, 1-based index i): stream, type, schema version, data,
-- metadata, business date, and tags as a JSON array of strings.
-- p_expect_streams / p_expect_versions: expected current version per stream; 0 means "the
-- stream must not exist yet"; streams not listed are not checked.
-- p_condition_tags / p_condition_after: fail if any event carrying one of these tags has a
-- position above p_condition_after (NULL: no condition).
--
-- Conflicts raise SQLSTATE FL001 (stream version) or FL002 (tag condition) with a JSON
-- DETAIL; the caller rolls back and retries with a fresh read.
--
-- Why one global lock: positions must increase in commit order so that no reader can ever see
-- position N+1 before N commits (the gap problem of sequences), and the audit hash chain needs
-- the previous event's hash inside the writing transaction. The lock is taken here, as the last
-- step before the caller commits, and released by the commit: it covers one insert and one
-- WAL flush, never a command's reads or decision. ARCHITECTURE.md has the argument.
CREATE FUNCTION fundledger_append(
    p_streams          text[],
    p_types            text[],
    p_schema_versions  integer[],
    p_data             jsonb[],
    p_metadata         jsonb[],
    p_business_dates   date[],
    p_tags             jsonb[],
    p_expect_streams   text[],
    p_expect_versions  bigint[],
    p_condition_tags   text[],
    p_condition_after  bigint
) RETURNS TABLE (event_position bigint, event_stream_id text, event_stream_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_head     bigint;
    v_conflict record;
BEGIN
    -- Under REPEATABLE READ the snapshot would predate the lock and miss the previous
    -- holder's events; only READ COMMITTED takes a fresh snapshot per statement.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'events can only be appended in a READ COMMITTED transaction'
            USING ERRCODE = 'FL003';
    END IF;

    PERFORM pg_advisory_xact_lock(7378645687612630630);  -- 'fundledge' as a number; the append lock

    IF p_condition_after IS NOT NULL THEN
        SELECT t.tag, t.position INTO v_conflict
          FROM event_tags t
         WHERE t.tag = ANY (p_condition_tags) AND t.position > p_condition_after
         ORDER BY t.position
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'an event tagged % was appended at position % after the decision read position %',
                    v_conflict.tag, v_conflict.position, p_condition_after
                USING ERRCODE = 'FL002',
                      DETAIL = json_build_object('tag', v_conflict.tag,
                                                 'position', v_conflict.position,
                                                 'after', p_condition_after)::text;
        END IF;
    END IF;

    SELECT x.stream_id, x.expected, coalesce(cur.v, 0) AS actual INTO v_conflict
      FROM unnest(p_expect_streams, p_expect_versions) AS x(stream_id, expected)
      LEFT JOIN LATERAL (
            SELECT e.stream_version AS v FROM events e
             WHERE e.stream_id = x.stream_id
             ORDER BY e.stream_version DESC LIMIT 1) cur ON true
     WHERE x.expected <> coalesce(cur.v, 0)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'stream % is at version %, the command expected %',
                v_conflict.stream_id, v_conflict.actual, v_conflict.expected
            USING ERRCODE = 'FL001',
                  DETAIL = json_build_object('stream', v_conflict.stream_id,
                                             'expected', v_conflict.expected,
                                             'actual', v_conflict.actual)::text;
    END IF;

    SELECT coalesce(max(e.position), 0) INTO v_head FROM events e;

    RETURN QUERY
    WITH input AS (
        SELECT i AS idx, p_streams[i] AS stream_id
          FROM generate_subscripts(p_streams, 1) AS i
    ), stream_heads AS (
        SELECT s.stream_id, coalesce(cur.v, 0) AS version
          FROM (SELECT DISTINCT input.stream_id FROM input) s
          LEFT JOIN LATERAL (
                SELECT e.stream_version AS v FROM events e
                 WHERE e.stream_id = s.stream_id
                 ORDER BY e.stream_version DESC LIMIT 1) cur ON true
    ), numbered AS (
        SELECT input.idx, input.stream_id,
               v_head + input.idx AS pos,
               h.version + row_number() OVER (PARTITION BY input.stream_id ORDER BY input.idx) AS ver
          FROM input JOIN stream_heads h USING (stream_id)
    ), inserted AS (
        INSERT INTO events (position, stream_id, stream_version, event_type, schema_version,
                            data, metadata, tags, business_date)
        SELECT n.pos, n.stream_id, n.ver, p_types[n.idx], p_schema_versions[n.idx],
               p_data[n.idx], p_metadata[n.idx],
               ARRAY(SELECT DISTINCT t FROM jsonb_array_elements_text(p_tags[n.idx]) AS t ORDER BY t),
               p_business_dates[n.idx]
          FROM numbered n
         ORDER BY n.idx
        RETURNING events.position, events.stream_id, events.stream_version, events.tags
    ), tagged AS (
        INSERT INTO event_tags (tag, position)
        SELECT unnest(i.tags), i.position FROM inserted i
    )
    SELECT i.position, i.stream_id, i.stream_version FROM inserted i ORDER BY i.position;

    -- Wakes live subscribers when (and only if) this transaction commits.
    PERFORM pg_notify('fundledger_events', (v_head + coalesce(array_length(p_streams, 1), 0))::text);
END
$$;

-- The role the service writes with: it may read and insert, nothing else. Roles belong to the
-- whole cluster, so another database may have created it already; a server that does not let
-- us create roles keeps working with the triggers alone (the service logs a warning).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        BEGIN
            CREATE ROLE fundledger_writer NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role fundledger_writer: the service will write as %', current_user;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT SELECT, INSERT ON events, event_tags TO fundledger_writer;
        GRANT EXECUTE ON FUNCTION fundledger_append(text[], text[], integer[], jsonb[], jsonb[],
            date[], jsonb[], text[], bigint[], text[], bigint) TO fundledger_writer;
    END IF;
END
$$;
