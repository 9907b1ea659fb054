-- Inline read model: each pool's expansion quota per policy year, kept in step with the log in
-- the same transaction as the events that change it, so an approval reads one row instead of
-- folding every approval of the year. The pure fold in projections/src/pools.rs over the log
-- is its rebuild; tests/read_models.rs checks that the two agree row for row.

CREATE TABLE quota_usage (
    pool      text          NOT NULL,
    year      integer       NOT NULL,
    cap       numeric(20,2) NOT NULL CHECK (cap >= 0),
    committed numeric(20,2) NOT NULL DEFAULT 0 CHECK (committed >= 0),
    paid      numeric(20,2) NOT NULL DEFAULT 0 CHECK (paid >= 0),
    recovered numeric(20,2) NOT NULL DEFAULT 0 CHECK (recovered >= 0),
    PRIMARY KEY (pool, year),
    -- The invariant of DOMAIN.md, held by the database too, as the last line of defence.
    CONSTRAINT quota_within_cap CHECK (committed + paid - recovered <= cap)
);

-- Quota money an approved application holds, until it is paid, withdrawn or rejected.
CREATE TABLE quota_reservations (
    application text          PRIMARY KEY,
    pool        text          NOT NULL,
    year        integer       NOT NULL,
    amount      numeric(20,2) NOT NULL CHECK (amount > 0)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON quota_usage, quota_reservations TO fundledger_writer;
    END IF;
END
$$;
