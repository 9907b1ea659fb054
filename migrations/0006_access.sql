-- Access and keys (issue 12).
--
-- 1. The service logs in as `fundledger_service`, a role that owns nothing and is a member of
--    `fundledger_writer` (created by the service at start, src/postgres/mod.rs). Here the
--    writer loses INSERT on the log tables: events reach `events` and `event_tags` only
--    through `fundledger_append`, and positions reach `log` only through
--    `fundledger_sequence`, both now SECURITY DEFINER (they run as this migration's owner)
--    with a fixed search_path, so a caller's temporary tables or functions cannot stand in
--    for ours. So a client cannot forge a transaction id, a stream version or a position,
--    and the hash chain is computed by the sequencer alone.
-- 2. `key_checks`: what the keys kept outside the database must be. A process that holds a
--    different or no key file refuses to start instead of writing under a new key.

DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION fundledger_append(bigint[], text[], text[], integer[], jsonb[], jsonb[], '
        'date[], jsonb[], text[], bigint[], text[], pg_snapshot) '
        'SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
    EXECUTE format(
        'ALTER FUNCTION fundledger_sequence() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema());
END
$$;

-- Functions are executable by PUBLIC by default; only the writer may append and sequence.
REVOKE ALL ON FUNCTION fundledger_append(bigint[], text[], text[], integer[], jsonb[], jsonb[],
    date[], jsonb[], text[], bigint[], text[], pg_snapshot) FROM PUBLIC;
REVOKE ALL ON FUNCTION fundledger_sequence() FROM PUBLIC;
REVOKE ALL ON events, event_tags, log, ledger FROM PUBLIC;

-- The fingerprint of each key: HMAC-SHA256(key, 'fundledger key check v1'), which tells a
-- right key from a wrong one and reveals nothing of it. `name` is the key's purpose
-- ('person' for person keys, 'seal' for sealing keys, 'checkpoint' for the signing key);
-- sealing keys are rotated, so each has its id (sealed values name the id they were
-- sealed under). Written by the owner only, at start or by `fundledger keys rotate`.
CREATE TABLE key_checks (
    name        text        NOT NULL CHECK (name IN ('person', 'seal', 'checkpoint')),
    key_id      integer     NOT NULL CHECK (key_id >= 1),
    check_value bytea       NOT NULL CHECK (length(check_value) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, key_id)
);
REVOKE ALL ON key_checks FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
            ON events, event_tags, log FROM fundledger_writer;
        GRANT SELECT ON events, event_tags, log, ledger TO fundledger_writer;
        GRANT EXECUTE ON FUNCTION fundledger_append(bigint[], text[], text[], integer[],
            jsonb[], jsonb[], date[], jsonb[], text[], bigint[], text[], pg_snapshot)
            TO fundledger_writer;
        GRANT EXECUTE ON FUNCTION fundledger_sequence() TO fundledger_writer;
        GRANT SELECT ON key_checks TO fundledger_writer;
    END IF;
END
$$;
