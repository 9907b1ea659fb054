-- The event log: the ground truth of fundledger. Everything else is derived from it.
--
-- Never edit this file once applied anywhere: sqlx checks its checksum. Change the schema
-- with a new migration. ARCHITECTURE.md ("The log") explains the design; in short:
--
-- * `events` holds what was appended. Appends run concurrently: they lock only the consistency
--   tags and streams they touch, so unrelated commands never wait for each other and commits
--   share WAL flushes (group commit).
-- * `log` gives every committed event its global `position`: gapless and in commit order. The
--   sequencer (fundledger_sequence) assigns positions only to events whose transaction is older
--   than every transaction still running (pg_snapshot_xmin), so no event can ever commit behind
--   a position already handed out. A reader following `log` by position never skips.

CREATE TABLE events (
    -- Identity of the event; unique, increasing in insertion (not commit) order. The global
    -- order is `log.position`.
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    -- The writing transaction: what the sequencer orders by and waits on.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_transaction_id_idx ON events (transaction_id, id);

-- One row per (tag, event): the conditional append checks "no event with these tags that my
-- read did not see" with a short index range scan whose cost does not grow with the log.
--
-- Deliberately one index only: with a second one on (tag, event_id) the planner may walk all
-- of a hot tag's rows and filter on transaction_id, which made each append cost more the
-- longer the log grew (measured, BENCHMARKS.md).
CREATE TABLE event_tags (
    tag            text   NOT NULL,
    event_id       bigint NOT NULL,
    transaction_id xid8   NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX event_tags_tag_transaction_idx ON event_tags (tag, transaction_id, event_id);

-- The global order. Written only by the sequencer, one batch at a time.
CREATE TABLE log (
    position     bigint PRIMARY KEY CHECK (position >= 1),
    event_id     bigint NOT NULL UNIQUE,
    -- Every transaction below this id had ended when the batch was sequenced: the next batch
    -- starts there.
    sealed_below xid8   NOT NULL,
    -- Audit hash chain over log order: filled once the chain is introduced.
    prev_hash    bytea,
    hash         bytea
);

-- For auditors reading SQL: the log in global order.
CREATE VIEW ledger AS
SELECT l.position, e.id AS event_id, e.stream_id, e.stream_version, e.event_type,
       e.schema_version, e.data, e.metadata, e.tags, e.business_date, e.recorded_at,
       e.transaction_id, l.prev_hash, l.hash
  FROM log l JOIN events e ON e.id = l.event_id;

-- Append-only, enforced by the database. Statement-level, so even an UPDATE or DELETE that
-- matches no row is refused.
CREATE FUNCTION fundledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'FL010',
              HINT = 'record a correcting event (for example a recovery) instead';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change();
CREATE TRIGGER event_tags_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON event_tags
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change();
CREATE TRIGGER log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON log
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change();

-- Appends events atomically, in one round trip.
--
-- Per event (arrays of equal length, 1-based index i): stream, type, schema version, data,
-- metadata, business date, and tags as a JSON array of strings.
-- p_lock_keys: the advisory lock keys of every stream and tag involved (the client hashes
-- 'stream:<id>' and 'tag:<tag>'), sorted and distinct, so every writer locks in one order and
-- no two writers deadlock.
-- p_expect_streams / p_expect_versions: expected current version per stream; 0 means "the
-- stream must not exist yet"; streams not listed are not checked.
-- p_condition_tags / p_condition_snapshot: fail if an event carrying one of these tags was
-- committed by a transaction the decision's read (taken at that snapshot) did not see.
--
-- The locks are transaction-level and held to commit. Writers of one tag or stream queue;
-- everyone else runs in parallel. Conflicts raise SQLSTATE FL001 (stream version) or FL002
-- (tag condition) with a JSON DETAIL; the caller rolls back, reads again and decides again.
CREATE FUNCTION fundledger_append(
    p_lock_keys          bigint[],
    p_streams            text[],
    p_types              text[],
    p_schema_versions    integer[],
    p_data               jsonb[],
    p_metadata           jsonb[],
    p_business_dates     date[],
    p_tags               jsonb[],
    p_expect_streams     text[],
    p_expect_versions    bigint[],
    p_condition_tags     text[],
    p_condition_snapshot pg_snapshot
) RETURNS TABLE (event_id bigint, event_stream_id text, event_stream_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_conflict record;
    v_xmin     xid8;
    v_versions bigint[];
    v_heads    jsonb := '{}';
    v_head     bigint;
    v_expect   integer;
BEGIN
    -- Each statement below must see what the previous holder of a lock committed: only READ
    -- COMMITTED takes a fresh snapshot per statement.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'events can only be appended in a READ COMMITTED transaction'
            USING ERRCODE = 'FL003';
    END IF;

    PERFORM pg_advisory_xact_lock(k) FROM unnest(p_lock_keys) WITH ORDINALITY AS u(k, n) ORDER BY n;

    IF p_condition_snapshot IS NOT NULL THEN
        -- Only transactions at or above the snapshot's xmin can be invisible to it: a range
        -- scan over the tag's recent rows, whatever the tag's history.
        v_xmin := pg_snapshot_xmin(p_condition_snapshot);
        SELECT t.tag, t.event_id INTO v_conflict
          FROM event_tags t
         WHERE t.tag = ANY (p_condition_tags)
           AND t.transaction_id >= v_xmin
           AND NOT pg_visible_in_snapshot(t.transaction_id, p_condition_snapshot)
         -- The ORDER BY matches the index: without it the cached generic plan of a LIMIT 1
         -- query is a sequential scan of the whole table (measured: 16 ms at 200,000 rows).
         ORDER BY t.tag, t.transaction_id
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'event % tagged % was appended after the decision read the tag',
                    v_conflict.event_id, v_conflict.tag
                USING ERRCODE = 'FL002',
                      DETAIL = json_build_object('tag', v_conflict.tag,
                                                 'event_id', v_conflict.event_id)::text;
        END IF;
    END IF;

    -- Stream versions, under the stream locks. Streams of a bulk append repeat, so each
    -- stream's head is looked up once.
    v_versions := array_fill(0::bigint, ARRAY[cardinality(p_streams)]);
    FOR i IN 1 .. cardinality(p_streams) LOOP
        v_head := (v_heads ->> p_streams[i])::bigint;
        IF v_head IS NULL THEN
            SELECT e.stream_version INTO v_head FROM events e
             WHERE e.stream_id = p_streams[i] ORDER BY e.stream_version DESC LIMIT 1;
            v_head := coalesce(v_head, 0);
            v_expect := array_position(p_expect_streams, p_streams[i]);
            IF v_expect IS NOT NULL AND p_expect_versions[v_expect] <> v_head THEN
                RAISE EXCEPTION 'stream % is at version %, the command expected %',
                        p_streams[i], v_head, p_expect_versions[v_expect]
                    USING ERRCODE = 'FL001',
                          DETAIL = json_build_object('stream', p_streams[i],
                                                     'expected', p_expect_versions[v_expect],
                                                     'actual', v_head)::text;
            END IF;
        END IF;
        v_versions[i] := v_head + 1;
        v_heads := jsonb_set(v_heads, ARRAY[p_streams[i]], to_jsonb(v_head + 1));
    END LOOP;

    RETURN QUERY
    WITH inserted AS (
        INSERT INTO events (stream_id, stream_version, event_type, schema_version,
                            data, metadata, tags, business_date)
        SELECT u.s, u.v, u.t, u.sv, u.d, u.m,
               ARRAY(SELECT DISTINCT x FROM jsonb_array_elements_text(u.tg) AS x ORDER BY x),
               u.bd
          FROM unnest(p_streams, v_versions, p_types, p_schema_versions, p_data, p_metadata,
                      p_tags, p_business_dates)
               WITH ORDINALITY AS u(s, v, t, sv, d, m, tg, bd, n)
         ORDER BY u.n
        RETURNING events.id, events.stream_id, events.stream_version, events.tags
    ), tagged AS (
        INSERT INTO event_tags (tag, event_id)
        SELECT unnest(i.tags), i.id FROM inserted i
    )
    SELECT i.id, i.stream_id, i.stream_version FROM inserted i ORDER BY i.id;
END
$$;

-- Gives positions to every event whose transaction ended before the oldest transaction still
-- running anywhere in the cluster started writing. Returns the head position afterwards, or
-- NULL when another sequencer holds the lock (it is doing the same work).
--
-- Why this never skips: a transaction that has not ended has an id >= pg_snapshot_xmin(now),
-- and any transaction that starts writing later gets a larger id still. So once every event
-- below the horizon is positioned, no event can ever appear below it: positions handed out
-- are final. Events of one transaction get consecutive positions, in insertion order.
CREATE FUNCTION fundledger_sequence() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_from xid8;
    v_to   xid8;
    v_head bigint;
    v_n    bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'the log can only be sequenced in a READ COMMITTED transaction'
            USING ERRCODE = 'FL003';
    END IF;
    IF NOT pg_try_advisory_xact_lock(1718183012, 0) THEN
        RETURN NULL;
    END IF;
    -- Taken after the lock, so it is at least as new as the previous batch's horizon.
    v_to := pg_snapshot_xmin(pg_current_snapshot());
    SELECT l.position, l.sealed_below INTO v_head, v_from FROM log l ORDER BY l.position DESC LIMIT 1;
    v_head := coalesce(v_head, 0);
    v_from := coalesce(v_from, '0'::xid8);
    IF v_to <= v_from THEN
        RETURN v_head;
    END IF;
    INSERT INTO log (position, event_id, sealed_below)
    SELECT v_head + row_number() OVER (ORDER BY e.transaction_id, e.id), e.id, v_to
      FROM events e
     WHERE e.transaction_id >= v_from AND e.transaction_id < v_to;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        -- Wakes live subscribers when this batch commits. Only the sequencer notifies: a
        -- NOTIFY serialises the commits of the transactions that send it.
        PERFORM pg_notify('fundledger_log', (v_head + v_n)::text);
    END IF;
    RETURN v_head + v_n;
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
        GRANT SELECT, INSERT ON events, event_tags, log TO fundledger_writer;
        GRANT SELECT ON ledger TO fundledger_writer;
    END IF;
END
$$;
