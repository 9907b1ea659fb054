//! The stored read models, defined once: each table is a view of the folds of this crate, and
//! what a table must change after some events is the difference between the folds before and
//! after them. The live path (a command's transaction) and `fundledger rebuild` both write
//! [`Changes`]; neither restates a fold.
//!
//! - Tables of whole rows (`application_status`, `notices`, `notice_lines`, `objections`,
//!   `payouts`) get every row that differs, written whole (insert or replace).
//! - Tables of totals (`quota_usage`, `spending`, `ledger_entries`) get the difference of each figure, added to
//!   what is stored. Totals are shared by many aggregates (every approval of a city in a year
//!   moves one quota row), so a command that folded only its own aggregate cannot know the
//!   stored total, but it knows exactly what it adds to it.
//!
//! Live, `before` is the fold of the events the command read (the aggregates it decided on)
//! and `after` that plus the events it appends. A rebuild is the difference between an empty
//! fold and the fold of the whole log. `tests/read_models.rs` holds the two to each other.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::applications::StatusRow;
use crate::entries::{EntryKey, Sides};
use crate::notices::{NoticeLineRow, NoticeRow, ObjectionRow};
use crate::payouts::PayoutRow;
use crate::pools::QuotaRow;
use crate::spending::{Figures, SpendingKey};
use crate::ReadModels;

/// One row of `spending` (or the change to it): its key and its figures, flat as the table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpendingRow {
    #[serde(flatten)]
    pub key: SpendingKey,
    #[serde(flatten)]
    pub figures: Figures,
}

/// One row of `ledger_entries` (or the change to it): pool, month, account, debit, credit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryRow {
    #[serde(flatten)]
    pub key: EntryKey,
    #[serde(flatten)]
    pub sides: Sides,
}

/// What the stored read models must change: whole rows to write, and differences to add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub application_status: Vec<StatusRow>,
    pub notices: Vec<NoticeRow>,
    pub notice_lines: Vec<NoticeLineRow>,
    pub objections: Vec<ObjectionRow>,
    pub payouts: Vec<PayoutRow>,
    /// Differences to add to `quota_usage` (cap, committed, paid, recovered).
    pub quota_usage: Vec<QuotaRow>,
    /// Differences to add to `spending`.
    pub spending: Vec<SpendingRow>,
    /// Differences to add to `ledger_entries` (the double-entry view).
    pub ledger_entries: Vec<EntryRow>,
}

/// The rows of `after` that are not in `before` as they are.
fn changed<K: Ord, V: Clone + PartialEq>(
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
) -> Vec<V> {
    after.iter().filter(|(k, v)| before.get(k) != Some(v)).map(|(_, v)| v.clone()).collect()
}

impl Changes {
    /// What the tables must change to go from the folds of `before` to those of `after`,
    /// where `after` is `before` with more events folded in.
    pub fn between(before: &ReadModels, after: &ReadModels) -> Changes {
        // An event never removes a row of these tables, so rows only appear or change.
        let application_status = after
            .applications
            .by_id
            .iter()
            .filter(|(id, a)| before.applications.by_id.get(*id) != Some(a))
            .map(|(_, a)| a.status_row())
            .collect();
        let quota_usage = after
            .pools
            .quota_keys()
            .into_iter()
            .filter_map(|(pool, year)| {
                let (a, b) =
                    (after.pools.quota_row(&pool, year), before.pools.quota_row(&pool, year));
                let d = QuotaRow {
                    pool,
                    year,
                    cap: a.cap - b.cap,
                    committed: a.committed - b.committed,
                    paid: a.paid - b.paid,
                    recovered: a.recovered - b.recovered,
                };
                let zero = Decimal::ZERO;
                (d.cap != zero || d.committed != zero || d.paid != zero || d.recovered != zero)
                    .then_some(d)
            })
            .collect();
        let spending = after
            .spending
            .rows
            .iter()
            .filter_map(|(key, a)| {
                let b = before.spending.rows.get(key).cloned().unwrap_or_default();
                let d = Figures {
                    payouts: a.payouts - b.payouts,
                    paid: a.paid - b.paid,
                    failed: a.failed - b.failed,
                    recovered: a.recovered - b.recovered,
                };
                (d != Figures::default()).then(|| SpendingRow { key: key.clone(), figures: d })
            })
            .collect();
        let ledger_entries = after
            .entries
            .rows
            .iter()
            .filter_map(|(key, a)| {
                let b = before.entries.rows.get(key).cloned().unwrap_or_default();
                let d = Sides { debit: a.debit - b.debit, credit: a.credit - b.credit };
                (d != Sides::default()).then(|| EntryRow { key: key.clone(), sides: d })
            })
            .collect();
        Changes {
            application_status,
            notices: changed(&before.notices.notices, &after.notices.notices),
            notice_lines: changed(&before.notices.lines, &after.notices.lines),
            objections: changed(&before.notices.objections, &after.notices.objections),
            payouts: changed(&before.payouts.by_id, &after.payouts.by_id),
            quota_usage,
            spending,
            ledger_entries,
        }
    }

    /// Every row of a fold of the whole log: what a rebuild writes into empty tables.
    pub fn all(models: &ReadModels) -> Changes {
        Changes::between(&ReadModels::default(), models)
    }

    pub fn is_empty(&self) -> bool {
        self == &Changes::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fold(models: &mut ReadModels, events: &[(&str, serde_json::Value)]) {
        for (t, d) in events {
            models.apply(t, d).unwrap();
        }
    }

    fn submitted() -> (&'static str, serde_json::Value) {
        (
            "ApplicationSubmitted",
            json!({"application": "a1", "program": "vocational_training", "county": "371502",
                "pool": "371500", "submitted_on": "2024-10-20", "year": 2024, "submitted_by": "c",
                "subject": "6-18-02-04", "level": 5, "details": {},
                "person": {"key": "k1", "id_number_sealed": "s", "name_sealed": "s",
                           "id_number_masked": "371502********1234", "name_masked": "周*"},
                "decision": {"policy": "p", "document": "d", "amount": "600.00", "amount_rule": "r",
                             "funding": "expansion_pilot", "funding_rule": "r"}}),
        )
    }

    fn approved() -> (&'static str, serde_json::Value) {
        (
            "ApplicationApproved",
            json!({"application": "a1", "pool": "371500", "year": 2024, "amount": "600.00",
                "funding": "expansion_pilot", "counts_against_quota": true, "reviewer": "r",
                "approved_on": "2024-10-21"}),
        )
    }

    #[test]
    fn an_approval_read_alone_moves_the_quota_by_its_amount_and_rewrites_its_row() {
        // The command read only the application's own stream: no pool, no quota setting.
        let mut before = ReadModels::default();
        fold(&mut before, &[submitted()]);
        let mut after = before.clone();
        fold(&mut after, &[approved()]);
        let c = Changes::between(&before, &after);
        assert_eq!(c.application_status.len(), 1);
        assert_eq!(c.application_status[0].status, "approved");
        assert_eq!(c.quota_usage.len(), 1);
        let q = &c.quota_usage[0];
        assert_eq!((q.cap, q.committed), (Decimal::ZERO, Decimal::new(60000, 2)));
        assert!(c.spending.is_empty() && c.payouts.is_empty() && c.notices.is_empty());
    }

    #[test]
    fn the_rebuild_of_a_log_is_the_sum_of_the_live_changes_of_its_events() {
        let events = [submitted(), approved()];
        let mut whole = ReadModels::default();
        fold(&mut whole, &events);
        let all = Changes::all(&whole);
        assert_eq!(all.quota_usage[0].committed, Decimal::new(60000, 2));
        assert_eq!(all.application_status[0], whole.applications.by_id["a1"].status_row());
        // Nothing changes when nothing is folded.
        assert!(Changes::between(&whole, &whole).is_empty());
    }
}
