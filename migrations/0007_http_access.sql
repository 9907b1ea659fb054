-- The HTTP layer's access rules (issue 12): tokens name a person, and idempotency keys expire.

-- A token stands for one person; several tokens (a desk PC, a county system) may stand for the
-- same person. Maker-checker compares persons, so `person` is what the self-review check
-- reads, and every event's metadata records it beside the token id. Tokens created before this
-- migration had only a label: each becomes a person of its own, `token:<id>`, so no two old
-- tokens are taken for one person (which would refuse reviews that were allowed) and an
-- operator can re-issue tokens with a real `--person` at leisure.
ALTER TABLE api_tokens ADD COLUMN person text;
UPDATE api_tokens SET person = 'token:' || id::text WHERE person IS NULL;
ALTER TABLE api_tokens ALTER COLUMN person SET NOT NULL;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_person_check CHECK (btrim(person) <> '');
CREATE INDEX api_tokens_person ON api_tokens (person);

-- Pruning by age reads created_at.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- Idempotency keys are kept at least 30 days (README, "Idempotency"); older ones are deleted by
-- this function only. The service's role has no DELETE on the table: a maintenance role (or the
-- owner) runs the pruning, so a compromised service cannot erase the memory of requests it has
-- answered inside the retention period. The floor is enforced here, not by the caller.
-- search_path is pinned to the schema the migration runs in, as a SECURITY DEFINER function
-- must (no caller can put a table of their own in its way).
DO $do$
BEGIN
    EXECUTE format($f$
CREATE FUNCTION fundledger_prune_idempotency(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = %I, pg_catalog, pg_temp AS $body$
DECLARE
    v_deleted bigint;
BEGIN
    IF older_than < interval '30 days' THEN
        RAISE EXCEPTION 'idempotency keys are kept at least 30 days (asked to prune those older than %%)', older_than
            USING ERRCODE = 'FL007';
    END IF;
    DELETE FROM idempotency_keys WHERE created_at < now() - older_than;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$body$$f$, current_schema());
END
$do$;

REVOKE ALL ON FUNCTION fundledger_prune_idempotency(interval) FROM PUBLIC;

-- The maintenance role: may prune, nothing else. Created when the migrating user may create
-- roles; otherwise only the owner can prune (ARCHITECTURE.md, "HTTP: one POST, one transaction").
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_maintenance') THEN
        -- Roles belong to the cluster: two databases migrating at once may both try.
        BEGIN
            CREATE ROLE fundledger_maintenance NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role fundledger_maintenance: the owner prunes idempotency keys';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_maintenance') THEN
        GRANT EXECUTE ON FUNCTION fundledger_prune_idempotency(interval) TO fundledger_maintenance;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO fundledger_maintenance', current_schema());
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        REVOKE DELETE, TRUNCATE ON idempotency_keys FROM fundledger_writer;
    END IF;
END
$$;
