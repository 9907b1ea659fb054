-- projections::entries: the double-entry view (复式记账). Per pool, month (YYYY-MM, of the
-- business date of the event that posted) and account, the sums debited and credited. Every
-- event posts lines of one debit, one credit and one amount, so each pool's month sums to
-- zero (the trial balance, GET /v1/reports/trial-balance). Accounts: fund (基金),
-- expansion_quota (扩围额度), payable (应付), paid (已付), returned (退回待重发),
-- recovered (追回). Totals only grow: a difference is never negative.
CREATE TABLE ledger_entries (
    pool    text          NOT NULL,
    month   text          NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
    account text          NOT NULL,
    debit   numeric(20,2) NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit  numeric(20,2) NOT NULL DEFAULT 0 CHECK (credit >= 0),
    PRIMARY KEY (pool, month, account)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ledger_entries TO fundledger_writer;
    END IF;
END
$$;
-- fundledger: rebuild read models
