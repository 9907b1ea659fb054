-- Inline read models of an application's whole life, kept in step with the log in the
-- transaction of the events that change them (src/read_models.rs, called by
-- commands::commit), so lists, reports and the HTTP layer read rows instead of folding
-- streams. Each table is the pure fold named beside it in the projections crate over the
-- log; tests/read_models.rs runs a random history of a few thousand commands and compares
-- every table row for row with that fold.
--
-- Text ordering: the read helpers sort with COLLATE "C" so the rows come in the byte order of
-- the folds' BTreeMaps, whatever the database's collation.

-- projections::applications (Application::status_row). `paid` is money issued to the party
-- and not returned by the bank (issued payouts less failed ones); `recovered` is what came
-- back afterwards (追回).
CREATE TABLE application_status (
    application  text          PRIMARY KEY,
    program      text          NOT NULL,
    county       text          NOT NULL,
    pool         text          NOT NULL,
    year         integer       NOT NULL,
    -- The party's tag: `person:<key>` or `enterprise:<credit code>`.
    party        text          NOT NULL,
    -- As notices show them: never a person's name or ID number in clear.
    display_name text          NOT NULL,
    display_id   text          NOT NULL,
    subject      text          NOT NULL,
    level        integer       NULL,
    amount       numeric(20,2) NOT NULL,
    funding      text          NOT NULL,
    policy       text          NOT NULL,
    status       text          NOT NULL CHECK (status IN ('submitted', 'approved', 'in_notice',
                     'cleared', 'payout_issued', 'settled', 'payout_failed', 'recovered',
                     'rejected', 'withdrawn')),
    notice       text          NULL,
    submitted_on date          NOT NULL,
    submitted_by text          NOT NULL,
    recovered    numeric(20,2) NOT NULL DEFAULT 0 CHECK (recovered >= 0),
    paid         numeric(20,2) NOT NULL DEFAULT 0 CHECK (paid >= 0)
);
-- A county office lists its own applications; a party's applications by year.
CREATE INDEX application_status_county ON application_status (county, application);
CREATE INDEX application_status_party ON application_status (party, year);

-- projections::spending. Every figure is booked in the month (YYYY-MM) of the business date
-- of the event that moved the money: a payout in the month of its paid_on, a failed
-- settlement in the month the bank reported it, a recovery in the month it was recovered. A
-- month once reported never changes afterwards (monthly reporting, 鲁人社发〔2024〕8号 item 8).
-- A failed settlement does not reduce `paid` or `payouts`, which count payouts issued; it is
-- counted in `failed`, so a month's net spending is paid − failed − recovered. A reissue, once
-- a command makes one, is a new payout and counts again in `payouts` and `paid`.
CREATE TABLE spending (
    pool      text          NOT NULL,
    county    text          NOT NULL,
    program   text          NOT NULL,
    month     text          NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
    -- 'expansion_pilot', 'employment_subsidy', or what the refund program records.
    funding   text          NOT NULL,
    payouts   integer       NOT NULL DEFAULT 0 CHECK (payouts >= 0),
    paid      numeric(20,2) NOT NULL DEFAULT 0 CHECK (paid >= 0),
    recovered numeric(20,2) NOT NULL DEFAULT 0 CHECK (recovered >= 0),
    failed    numeric(20,2) NOT NULL DEFAULT 0 CHECK (failed >= 0),
    PRIMARY KEY (pool, month, county, program, funding)
);

-- projections::persons (slot_rows): every application of a party (person or enterprise) by
-- policy year and program, with the slot its decision assigned. What an annual limit counts:
-- the rows that still stand. `stands` is the policy's Status::stands of the status the
-- submission decision maps this one to (prior_status in src/commands/applications.rs), so it
-- is derived here from `status`, never written; projections::applications::Status::stands is
-- the same rule and the rebuild test compares the two.
CREATE TABLE party_slots (
    party        text    NOT NULL,
    year         integer NOT NULL,
    program      text    NOT NULL,
    application  text    NOT NULL UNIQUE,
    submitted_on date    NOT NULL,
    -- 'base' or 'extra' (Jining's urgent-list slots); NULL when the decision assigned none.
    slot_kind    text    NULL,
    slot_number  integer NULL,
    status       text    NOT NULL,
    stands       boolean GENERATED ALWAYS AS (status NOT IN ('rejected', 'withdrawn', 'recovered')) STORED,
    PRIMARY KEY (party, year, program, application)
);

-- projections::persons (certificate_rows): a person's occupations (or catalog items) and
-- levels, for the skill-upgrade and training rules "same occupation and level once", "nothing
-- below a higher level" and "not both programs": exactly the facts prior() gives the policy.
CREATE TABLE person_certificates (
    party        text    NOT NULL,
    subject      text    NOT NULL,
    program      text    NOT NULL,
    application  text    NOT NULL UNIQUE,
    level        integer NULL,
    submitted_on date    NOT NULL,
    status       text    NOT NULL,
    stands       boolean GENERATED ALWAYS AS (status NOT IN ('rejected', 'withdrawn', 'recovered')) STORED,
    PRIMARY KEY (party, subject, program, application)
);

-- A party's annual counts per program, from the stored slots.
CREATE VIEW party_year_counts AS
    SELECT party, year, program,
           count(*) FILTER (WHERE stands) AS standing,
           count(*) AS applications
    FROM party_slots
    GROUP BY party, year, program;

-- projections::notices: public notices (公示) and their lines as published.
CREATE TABLE notices (
    notice       text    PRIMARY KEY,
    county       text    NOT NULL,
    pool         text    NOT NULL,
    starts_on    date    NOT NULL,
    -- The last day of the period, inclusive.
    ends_on      date    NOT NULL,
    working_days integer NOT NULL,
    opened_by    text    NOT NULL,
    status       text    NOT NULL CHECK (status IN ('open', 'closed')),
    closed_on    date    NULL,
    closed_by    text    NULL
);
CREATE INDEX notices_county ON notices (county, notice);

CREATE TABLE notice_lines (
    notice           text          NOT NULL,
    application      text          NOT NULL,
    name_masked      text          NOT NULL,
    id_number_masked text          NOT NULL,
    program          text          NOT NULL,
    amount           numeric(20,2) NOT NULL,
    PRIMARY KEY (notice, application)
);
CREATE INDEX notice_lines_application ON notice_lines (application);

-- projections::notices: objections (异议); an open one holds its application.
CREATE TABLE objections (
    objection   text PRIMARY KEY,
    notice      text NOT NULL,
    application text NOT NULL,
    summary     text NOT NULL,
    filed_on    date NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'upheld', 'dismissed')),
    note        text NULL,
    resolved_by text NULL,
    resolved_on date NULL
);
CREATE INDEX objections_open ON objections (application) WHERE status = 'open';

-- projections::payouts: each payout (拨付) and the bank's result.
CREATE TABLE payouts (
    payout         text          PRIMARY KEY,
    application    text          NOT NULL,
    pool           text          NOT NULL,
    county         text          NOT NULL,
    program        text          NOT NULL,
    funding        text          NOT NULL,
    year           integer       NOT NULL,
    amount         numeric(20,2) NOT NULL CHECK (amount > 0),
    paid_on        date          NOT NULL,
    issued_by      text          NOT NULL,
    status         text          NOT NULL CHECK (status IN ('issued', 'settled', 'failed')),
    bank_reference text          NULL,
    settled_on     date          NULL,
    failure_reason text          NULL,
    failed_on      date          NULL
);
CREATE INDEX payouts_application ON payouts (application);
CREATE INDEX payouts_county ON payouts (county, paid_on);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON application_status, spending, party_slots,
            person_certificates, notices, notice_lines, objections, payouts TO fundledger_writer;
        GRANT SELECT ON party_year_counts TO fundledger_writer;
    END IF;
END
$$;
