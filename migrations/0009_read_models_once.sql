-- Read models defined once (see src/read_models.rs and projections/src/tables.rs): every
-- table is written from the difference of the pure folds, live and by `fundledger rebuild`,
-- and exists because a query reads it.
--
-- Dropped, because nothing read them: a party's slots and certificates (a submission decides
-- on the folded history of the person's tagged events, in the transaction that appends) and
-- the quota reservations (the fold of an application's own stream knows what its approval
-- holds).
DROP VIEW party_year_counts;
DROP TABLE party_slots;
DROP TABLE person_certificates;
DROP TABLE quota_reservations;

-- What the application list shows, so it reads rows instead of folding each stream.
ALTER TABLE application_status
    ADD COLUMN slot            jsonb  NULL,
    ADD COLUMN payouts         text[] NOT NULL DEFAULT '{}',
    ADD COLUMN open_objections text[] NOT NULL DEFAULT '{}';

-- What a closed notice cleared, so GET /v1/notices/{id} reads rows.
ALTER TABLE notices
    ADD COLUMN cleared  text[] NOT NULL DEFAULT '{}',
    -- The holiday calendar its working days were counted with.
    ADD COLUMN calendar text   NULL;
-- The day an objection was received, when it was entered later (on paper).
ALTER TABLE objections ADD COLUMN received_on date NULL;

-- fundledger: rebuild read models
-- (the line above makes `migrate` rebuild every read model from the log after applying this
-- migration to a ledger that already holds events: the new columns are filled from the log.)
