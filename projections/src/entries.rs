//! The double-entry view (复式记账): every event that moves money posts balanced entries, and
//! a pool's month is a trial balance (试算平衡表) of what they posted.
//!
//! The postings are one pure function, [`Entries::postings`]: an event (and what earlier
//! events said about the payout it names) → journal lines of one debit account, one credit
//! account and one amount. A line debits and credits the same amount, so every event is
//! balanced by construction, and so is any sum of lines: a trial balance sums to zero.
//!
//! | event | debit | credit |
//! |---|---|---|
//! | a payout issued (拨付) | its source: 基金 or 扩围额度 | 应付 |
//! | the bank settled it (结算) | 应付 | 已付 |
//! | the bank failed it (失败) | 应付 | 退回待重发 |
//! | a reissue (重发, names the failed payout) | 退回待重发 | 应付 |
//! | a recovery (追回) | 追回 | its source |
//!
//! Why a failure does not credit the source back: the expansion quota holds a failed payout's
//! money for its reissue (the reissue does not touch the quota again), so the source accounts
//! move exactly as `quota_usage` does (`paid − recovered`), and the money the bank returned
//! waits in 退回待重发 until it is paid again. The spending report's net
//! (`paid − failed − recovered`) is then the source plus 退回待重发, month by month.
//!
//! Each line is booked in the month of the business date of its event, as `spending` is.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{PayoutFailed, PayoutIssued, PayoutSettled, RecoveryRecorded};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::spending::month;
use crate::{decode, ProjectionError};

/// An account of the double-entry view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    /// 基金: unemployment-insurance money not counted against the quota.
    Fund,
    /// 扩围额度: the expansion quota's money (`counts_against_quota`).
    ExpansionQuota,
    /// 应付: issued to a payee, not yet answered by the bank.
    Payable,
    /// 已付: the bank settled it.
    Paid,
    /// 退回待重发: the bank failed it; owed until a reissue pays it again.
    Returned,
    /// 追回: money recovered from a payee.
    Recovered,
}

impl Account {
    pub const ALL: [Account; 6] = [
        Account::Fund,
        Account::ExpansionQuota,
        Account::Payable,
        Account::Paid,
        Account::Returned,
        Account::Recovered,
    ];

    /// The `account` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Account::Fund => "fund",
            Account::ExpansionQuota => "expansion_quota",
            Account::Payable => "payable",
            Account::Paid => "paid",
            Account::Returned => "returned",
            Account::Recovered => "recovered",
        }
    }

    /// What a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Account::Fund => "基金",
            Account::ExpansionQuota => "扩围额度",
            Account::Payable => "应付",
            Account::Paid => "已付",
            Account::Returned => "退回待重发",
            Account::Recovered => "追回",
        }
    }

    pub fn parse(s: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn source(counts_against_quota: bool) -> Account {
        if counts_against_quota {
            Account::ExpansionQuota
        } else {
            Account::Fund
        }
    }
}

/// One journal line: `amount` debited to `debit` and credited to `credit`, in a pool's month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub pool: String,
    pub month: String,
    pub debit: Account,
    pub credit: Account,
    pub amount: Decimal,
}

/// The primary key of `ledger_entries`, in its column order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EntryKey {
    pub pool: String,
    pub month: String,
    pub account: String,
}

/// What an account was debited and credited with.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sides {
    pub debit: Decimal,
    pub credit: Decimal,
}

/// A payout as the postings of its later events need it: pool, amount, source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Issued {
    pool: String,
    amount: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// Per pool, month and account: the rows of `ledger_entries`.
    pub rows: BTreeMap<EntryKey, Sides>,
    payouts: BTreeMap<String, Issued>,
}

impl Entries {
    /// The postings of one event, given the payouts earlier events issued. Pure: it changes
    /// nothing ([`Entries::apply`] books them).
    pub fn postings<D: crate::EventData + ?Sized>(
        &self,
        event_type: &str,
        data: &D,
    ) -> Result<Vec<Posting>, ProjectionError> {
        let line = |pool: &str, on: NaiveDate, debit, credit, amount| Posting {
            pool: pool.to_string(),
            month: month(on),
            debit,
            credit,
            amount,
        };
        Ok(match event_type {
            PayoutIssued::TYPE => {
                let e: PayoutIssued = decode(event_type, data)?;
                let debit = if e.reissue_of.is_some() {
                    Account::Returned
                } else {
                    Account::source(e.counts_against_quota)
                };
                vec![line(&e.pool, e.paid_on, debit, Account::Payable, e.amount)]
            }
            PayoutSettled::TYPE => {
                let e: PayoutSettled = decode(event_type, data)?;
                self.payouts
                    .get(&e.payout)
                    .map(|p| line(&p.pool, e.settled_on, Account::Payable, Account::Paid, p.amount))
                    .into_iter()
                    .collect()
            }
            PayoutFailed::TYPE => {
                let e: PayoutFailed = decode(event_type, data)?;
                self.payouts
                    .get(&e.payout)
                    .map(|p| {
                        line(&p.pool, e.failed_on, Account::Payable, Account::Returned, p.amount)
                    })
                    .into_iter()
                    .collect()
            }
            RecoveryRecorded::TYPE => {
                let e: RecoveryRecorded = decode(event_type, data)?;
                let source = Account::source(e.counts_against_quota);
                vec![line(&e.pool, e.recovered_on, Account::Recovered, source, e.amount)]
            }
            _ => Vec::new(),
        })
    }

    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        for p in self.postings(event_type, data)? {
            self.side(&p.pool, &p.month, p.debit).debit += p.amount;
            self.side(&p.pool, &p.month, p.credit).credit += p.amount;
        }
        if event_type == PayoutIssued::TYPE {
            let e: PayoutIssued = decode(event_type, data)?;
            self.payouts.insert(e.payout, Issued { pool: e.pool, amount: e.amount });
        }
        Ok(())
    }

    fn side(&mut self, pool: &str, month: &str, account: Account) -> &mut Sides {
        let key = EntryKey {
            pool: pool.to_string(),
            month: month.to_string(),
            account: account.as_str().to_string(),
        };
        self.rows.entry(key).or_default()
    }

    /// Every row of `ledger_entries`, in primary-key order.
    pub fn rows(&self) -> Vec<(EntryKey, Sides)> {
        self.rows.iter().map(|(k, s)| (k.clone(), s.clone())).collect()
    }
}

/// One line of a trial balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BalanceLine {
    pub account: &'static str,
    /// 科目: the account's Chinese name.
    pub label: &'static str,
    pub debit: Decimal,
    pub credit: Decimal,
    /// `debit − credit`.
    pub balance: Decimal,
}

/// A trial balance (试算平衡表) of some rows: every account (those with nothing posted as
/// zeros), and the sums of both sides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrialBalance {
    pub lines: Vec<BalanceLine>,
    pub total_debit: Decimal,
    pub total_credit: Decimal,
    /// `total_debit == total_credit`.
    pub balanced: bool,
}

impl TrialBalance {
    /// Sums `rows` (of one pool and month, or of several) per account. An account name this
    /// build does not know is a stored row from a newer build: it is kept out of the lines
    /// but still counted in the sums, so the balance cannot hide it.
    pub fn of<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Sides)>) -> TrialBalance {
        let mut by_account: BTreeMap<Account, Sides> = BTreeMap::new();
        let (mut total_debit, mut total_credit) = (Decimal::ZERO, Decimal::ZERO);
        for (account, sides) in rows {
            total_debit += sides.debit;
            total_credit += sides.credit;
            if let Some(a) = Account::parse(account) {
                let s = by_account.entry(a).or_default();
                s.debit += sides.debit;
                s.credit += sides.credit;
            }
        }
        let lines = Account::ALL
            .into_iter()
            .map(|a| {
                let s = by_account.remove(&a).unwrap_or_default();
                BalanceLine {
                    account: a.as_str(),
                    label: a.label(),
                    balance: s.debit - s.credit,
                    debit: s.debit,
                    credit: s.credit,
                }
            })
            .collect();
        TrialBalance { lines, total_debit, total_credit, balanced: total_debit == total_credit }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn money(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn issued(payout: &str, amount: &str, on: &str, reissue_of: Option<&str>) -> serde_json::Value {
        let mut v = json!({"payout": payout, "application": "a1", "pool": "371500", "year": 2024,
            "amount": amount, "counts_against_quota": true, "paid_on": on, "issued_by": "f"});
        if let Some(r) = reissue_of {
            v["reissue_of"] = json!(r);
        }
        v
    }

    #[test]
    fn a_failed_payout_reissued_and_partly_recovered_balances_every_month() {
        let mut e = Entries::default();
        let log = [
            ("PayoutIssued", issued("p1", "700.00", "2024-11-12", None)),
            (
                "PayoutFailed",
                json!({"payout": "p1", "application": "a1", "reason": "销户", "failed_on": "2024-12-02"}),
            ),
            ("PayoutIssued", issued("p2", "700.00", "2024-12-05", Some("p1"))),
            (
                "PayoutSettled",
                json!({"payout": "p2", "application": "a1", "bank_reference": "B", "settled_on": "2024-12-06"}),
            ),
            (
                "RecoveryRecorded",
                json!({"recovery": "r1", "application": "a1", "pool": "371500", "year": 2024,
                "amount": "200.00", "counts_against_quota": true, "reason": "r",
                "recovered_on": "2025-01-03", "recorded_by": "f"}),
            ),
        ];
        for (t, d) in &log {
            for p in e.postings(t, d).unwrap() {
                assert_ne!(p.debit, p.credit, "{t}: a line moves money between two accounts");
            }
            e.apply(t, d).unwrap();
        }
        for month in ["2024-11", "2024-12", "2025-01"] {
            let tb = TrialBalance::of(
                e.rows
                    .iter()
                    .filter(|(k, _)| k.month == month)
                    .map(|(k, s)| (k.account.as_str(), s)),
            );
            assert!(tb.balanced, "{month}: {tb:?}");
        }
        let all = TrialBalance::of(e.rows.iter().map(|(k, s)| (k.account.as_str(), s)));
        let balance =
            |a: Account| all.lines.iter().find(|l| l.account == a.as_str()).unwrap().balance;
        // The quota paid 700 once and got 200 back; the bank paid 700; nothing is owed.
        assert_eq!(balance(Account::ExpansionQuota), money("500"));
        assert_eq!(balance(Account::Paid), money("-700"));
        assert_eq!(
            (balance(Account::Payable), balance(Account::Returned)),
            (Decimal::ZERO, Decimal::ZERO)
        );
        assert_eq!(balance(Account::Recovered), money("200"));
        assert_eq!(all.lines[0].label, "基金");
    }

    #[test]
    fn an_unknown_stored_account_still_counts_in_the_sums() {
        let s = Sides { debit: money("5"), credit: Decimal::ZERO };
        let tb = TrialBalance::of([("future", &s)]);
        assert!(!tb.balanced);
        assert_eq!(tb.lines.len(), Account::ALL.len());
    }
}
