-- Labour-dispatch refunds are paid per payee (鲁人社发〔2024〕8号 item 3, API.md "Additions to
-- v1"): one payout per line of the decision, each to its own unit, and the notice shows the
-- parts.

-- The unit a payout pays (credit code and name): the host employer of a labour-dispatch line,
-- a training institution paid on a trainee's behalf, or the enterprise applying. NULL for a
-- payout to a person: no personal information here.
ALTER TABLE payouts
    ADD COLUMN payee_credit_code text NULL,
    ADD COLUMN payee_name        text NULL;
CREATE INDEX payouts_payee ON payouts (payee_credit_code) WHERE payee_credit_code IS NOT NULL;

-- A notice line's amount by payee, as published: [{"credit_code","name","basis","amount"}],
-- empty where the amount goes to the applicant as one payout.
ALTER TABLE notice_lines ADD COLUMN payees jsonb NOT NULL DEFAULT '[]';

-- fundledger: rebuild read models
-- (the line above makes `migrate` rebuild every read model from the log after applying this
-- migration to a ledger that already holds events: the new columns are filled from the log.)
