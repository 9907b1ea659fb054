-- Erasure that keeps the proof (issue 15): one data key per person, outside the log.
--
-- A person's ID number, name, certificate number and bank accounts are sealed under a data key
-- of that person (`p<generation>:` in the events), and the data key is kept here, sealed under
-- the master sealing key of the key file (`k<id>:`). Erasing the person (`PersonErased`)
-- destroys the key: sealed_key becomes NULL and erased_at says when. Every value sealed under
-- it is then unreadable in the log, in exports and in backups of the log, while the log's
-- rows, hashes and signed checkpoints stay as they were. A person seen again after an erasure
-- gets the next generation.
--
-- The service creates keys (with the events sealed under them, in the same statement as the
-- append) and erases them. It can do nothing else to a row: a trigger refuses DELETE,
-- TRUNCATE and any UPDATE but live → erased, for everyone, the owner included (SQLSTATE
-- FL011), so a data key is never replaced by another one.
CREATE TABLE person_keys (
    person_key text        NOT NULL CHECK (person_key ~ '^[0-9a-f]{64}$'),
    generation integer     NOT NULL CHECK (generation >= 1),
    sealed_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CONSTRAINT person_keys_pkey PRIMARY KEY (person_key, generation),
    CONSTRAINT person_keys_erased_has_no_key CHECK ((sealed_key IS NULL) = (erased_at IS NOT NULL))
);
-- At most one live key per person: two commands creating one at once conflict (and retry).
CREATE UNIQUE INDEX person_keys_live ON person_keys (person_key) WHERE erased_at IS NULL;

CREATE FUNCTION fundledger_person_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL AND NEW.sealed_key IS NULL
       AND NEW.person_key = OLD.person_key AND NEW.generation = OLD.generation
       AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'person_keys: a data key is created, then at most erased; % is not allowed', TG_OP
        USING ERRCODE = 'FL011',
              HINT = 'erase a person with `fundledger persons erase`';
END
$$;

CREATE TRIGGER person_keys_erase_only BEFORE UPDATE OR DELETE ON person_keys
    FOR EACH ROW EXECUTE FUNCTION fundledger_person_keys_guard();
CREATE TRIGGER person_keys_no_truncate BEFORE TRUNCATE ON person_keys
    FOR EACH STATEMENT EXECUTE FUNCTION fundledger_refuse_change();

REVOKE ALL ON person_keys FROM PUBLIC;

-- fundledger_lock_read of 0013, with the latest data key row of each of `p_persons`, read
-- after the locks are held (a fresh snapshot: an erasure committed while this waited is
-- seen), in the same round trip: `data_keys`, a JSON array of
-- {person_key, generation, sealed_key} on every row.
CREATE FUNCTION fundledger_lock_read(
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
DECLARE
    v_keys jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(u.k) FROM unnest(p_lock_keys) WITH ORDINALITY AS u(k, n) ORDER BY u.n;
    SELECT coalesce(jsonb_agg(jsonb_build_object('person_key', k.person_key,
                                                 'generation', k.generation,
                                                 'sealed_key', k.sealed_key)), '[]'::jsonb)
      INTO v_keys
      FROM (SELECT DISTINCT ON (pk.person_key) pk.person_key, pk.generation, pk.sealed_key
              FROM person_keys pk WHERE pk.person_key = ANY (p_persons)
             ORDER BY pk.person_key, pk.generation DESC) k;
    -- The read of 0013 (its locks already held: none to take again).
    RETURN QUERY
        SELECT r.read_point, r.tag_ids, r.id, r.position, r.stream_id, r.stream_version,
               r.event_type, r.schema_version, r.data, r.metadata, r.tags, r.business_date,
               r.recorded_at, v_keys
          FROM fundledger_lock_read('{}'::bigint[], p_tags, p_streams, p_id_tag) r;
END
$$;

REVOKE ALL ON FUNCTION fundledger_lock_read(bigint[], text[], text[], text, text[]) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT SELECT, INSERT ON person_keys TO fundledger_writer;
        GRANT UPDATE (sealed_key, erased_at) ON person_keys TO fundledger_writer;
        GRANT EXECUTE ON FUNCTION fundledger_lock_read(bigint[], text[], text[], text, text[])
            TO fundledger_writer;
    END IF;
END
$$;
