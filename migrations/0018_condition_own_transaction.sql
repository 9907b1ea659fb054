-- Commands that share a commit (issue 11, item 4; `src/commands/group.rs`): one pool's
-- approvals run one after another in ONE transaction, each under its own savepoint. A member's
-- read point (`pg_current_snapshot()`) does not count its own transaction as visible while it
-- runs (its xid is at or above the snapshot's xmax), so the condition check took the events
-- an earlier member of the same group had appended - which the later member's read had seen,
-- in the same transaction - for a concurrent writer's, and every member but the first failed
-- its condition until it gave up. The check now leaves out the appending transaction's own
-- events: they were written before the read (members run one after another, and a command
-- appends once, after its read), and the condition guards against OTHER writers only.
--
-- Only that line differs from 0017; CREATE OR REPLACE has no way to change one line.

CREATE OR REPLACE FUNCTION fundledger_append(
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
    v_key      bigint;
BEGIN
    -- Each statement below must see what the previous holder of a lock committed: only READ
    -- COMMITTED takes a fresh snapshot per statement.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'events can only be appended in a READ COMMITTED transaction'
            USING ERRCODE = 'FL003';
    END IF;

    -- In the given order (callers sort them by key, whatever the mode): no deadlocks. An odd
    -- key asks for the shared lock of the even key below it (see the header).
    FOREACH v_key IN ARRAY p_lock_keys LOOP
        IF v_key & 1 = 1 THEN
            PERFORM pg_advisory_xact_lock_shared(v_key # 1);
        ELSE
            PERFORM pg_advisory_xact_lock(v_key);
        END IF;
    END LOOP;

    IF p_condition_snapshot IS NOT NULL THEN
        -- Only transactions at or above the snapshot's xmin can be invisible to it: a range
        -- scan over the tag's recent rows, whatever the tag's history.
        v_xmin := pg_snapshot_xmin(p_condition_snapshot);
        SELECT t.tag, t.event_id INTO v_conflict
          FROM event_tags t
         WHERE t.tag = ANY (p_condition_tags)
           AND t.transaction_id >= v_xmin
           AND NOT pg_visible_in_snapshot(t.transaction_id, p_condition_snapshot)
           -- What this transaction itself appended before the read was read (an earlier
           -- member of a group), not a concurrent writer's.
           AND t.transaction_id <> pg_current_xact_id()
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

-- CREATE OR REPLACE resets what 0006 set: run as the owner, with a fixed search_path. The
-- grants are kept.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION fundledger_append(bigint[], text[], text[], integer[], jsonb[], jsonb[], '
        'date[], jsonb[], text[], bigint[], text[], pg_snapshot) '
        'SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END
$$;
