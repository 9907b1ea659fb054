-- The HTTP layer's own tables. Neither is part of the audited history: tokens are credentials,
-- idempotency records are the memory of responses already given.

-- API tokens (one person each). Only a SHA-256 of the secret is stored; the token itself is
-- shown once, by `fundledger token create`.
CREATE TABLE api_tokens (
    id          uuid        PRIMARY KEY,
    label       text        NOT NULL CHECK (label <> ''),
    roles       text[]      NOT NULL CHECK (cardinality(roles) > 0),
    pool        text,
    county      text,
    secret_hash bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (pool IS NULL OR county IS NULL)
);

-- One row per (token, Idempotency-Key): written in the same transaction as the command's
-- events, so a retried request can never record twice. A concurrent copy of the request waits
-- on the primary key until the first commits, then replays the stored response.
CREATE TABLE idempotency_keys (
    token_id    uuid        NOT NULL REFERENCES api_tokens (id),
    key         text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    fingerprint text        NOT NULL,
    status      smallint    NOT NULL,
    response    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT SELECT, INSERT, UPDATE ON api_tokens TO fundledger_writer;
        GRANT SELECT, INSERT, UPDATE ON idempotency_keys TO fundledger_writer;
        -- /readyz checks that every migration is applied.
        GRANT SELECT ON _sqlx_migrations TO fundledger_writer;
    END IF;
END
$$;
