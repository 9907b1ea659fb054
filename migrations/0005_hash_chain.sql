-- The audit hash chain, computed by the sequencer in log order (ARCHITECTURE.md, "The hash
-- chain"): hash(n) = SHA-256(hash(n-1) || canonical(n)), hash(0) = 32 zero bytes.
--
-- canonical(n) is the UTF-8 text of a jsonb array, in PostgreSQL's jsonb output format:
--   [position, stream_id, stream_version, event_type, schema_version, business_date,
--    recorded_at, tags, data, metadata]
-- with business_date as "YYYY-MM-DD" or null, recorded_at as "YYYY-MM-DDTHH:MM:SS.ffffffZ"
-- (UTC, microseconds). The chain is computed when an event gets its position, so writers are
-- not serialised any more than the sequencer already serialises positions; a verifier
-- recomputes it from the rows (src/audit.rs) without trusting this function.

CREATE FUNCTION fundledger_canonical(p_position bigint, e events) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to(jsonb_build_array(
        p_position, e.stream_id, e.stream_version, e.event_type, e.schema_version,
        to_char(e.business_date, 'YYYY-MM-DD'),
        to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        to_jsonb(e.tags), e.data, e.metadata)::text, 'UTF8')
$$;

CREATE OR REPLACE FUNCTION fundledger_sequence() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_from  xid8;
    v_to    xid8;
    v_head  bigint;
    v_prev  bytea;
    v_hash  bytea;
    v_n     bigint := 0;
    v_pos   bigint[] := '{}';
    v_ids   bigint[] := '{}';
    v_prevs bytea[] := '{}';
    v_hashes bytea[] := '{}';
    r       events;
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
    SELECT l.position, l.sealed_below, l.hash INTO v_head, v_from, v_prev
      FROM log l ORDER BY l.position DESC LIMIT 1;
    v_head := coalesce(v_head, 0);
    v_from := coalesce(v_from, '0'::xid8);
    v_prev := coalesce(v_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    IF v_to <= v_from THEN
        RETURN v_head;
    END IF;
    FOR r IN
        SELECT * FROM events e
         WHERE e.transaction_id >= v_from AND e.transaction_id < v_to
         ORDER BY e.transaction_id, e.id
    LOOP
        v_n := v_n + 1;
        v_hash := sha256(v_prev || fundledger_canonical(v_head + v_n, r));
        v_pos := array_append(v_pos, v_head + v_n);
        v_ids := array_append(v_ids, r.id);
        v_prevs := array_append(v_prevs, v_prev);
        v_hashes := array_append(v_hashes, v_hash);
        v_prev := v_hash;
    END LOOP;
    IF v_n > 0 THEN
        INSERT INTO log (position, event_id, sealed_below, prev_hash, hash)
        SELECT p, i, v_to, ph, h FROM unnest(v_pos, v_ids, v_prevs, v_hashes) AS t(p, i, ph, h);
        -- Wakes live subscribers when this batch commits. Only the sequencer notifies: a
        -- NOTIFY serialises the commits of the transactions that send it.
        PERFORM pg_notify('fundledger_log', (v_head + v_n)::text);
    END IF;
    RETURN v_head + v_n;
END
$$;

-- Positions handed out before this migration get their hashes now, in log order: the one
-- time the log is rewritten, by the migration's owner, with the append-only triggers off for
-- this transaction only.
DO $$
DECLARE
    v_prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    v_hash bytea;
    l_row  record;
BEGIN
    IF EXISTS (SELECT 1 FROM log WHERE hash IS NULL) THEN
        ALTER TABLE log DISABLE TRIGGER USER;
        FOR l_row IN SELECT l.position, e FROM log l JOIN events e ON e.id = l.event_id ORDER BY l.position LOOP
            v_hash := sha256(v_prev || fundledger_canonical(l_row.position, l_row.e));
            UPDATE log SET prev_hash = v_prev, hash = v_hash WHERE position = l_row.position;
            v_prev := v_hash;
        END LOOP;
        ALTER TABLE log ENABLE TRIGGER USER;
    END IF;
END
$$;
