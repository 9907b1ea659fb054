//! Spending per pool, month, county, program and funding source: the monthly report the
//! notices demand (鲁人社发〔2024〕8号 item 8).
//!
//! Each figure is booked in the month of the business date of the event that moved the
//! money: a payout in the month of its `paid_on`, a failure in the month the bank reported
//! it, a recovery in the month it was recovered. A month once past therefore never changes,
//! and net spending of a month is `paid − failed − recovered`. A failed payout stays counted
//! in `payouts` and `paid`: they count what was issued; a reissue, once it exists, is a new
//! payout.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{ApplicationSubmitted, PayoutFailed, PayoutIssued, RecoveryRecorded};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::payouts::Books;
use crate::{decode, ProjectionError};

/// `YYYY-MM` of a business date: the `month` column.
pub fn month(on: NaiveDate) -> String {
    on.format("%Y-%m").to_string()
}

/// The primary key of `spending`, in its column order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SpendingKey {
    pub pool: String,
    pub month: String,
    pub county: String,
    pub program: String,
    pub funding: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    pub payouts: i32,
    pub paid: Decimal,
    pub failed: Decimal,
    pub recovered: Decimal,
}

impl Figures {
    pub fn net(&self) -> Decimal {
        self.paid - self.failed - self.recovered
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spending {
    pub rows: BTreeMap<SpendingKey, Figures>,
    books: Books,
    /// Payout → (pool, application, amount): what a failure gives back, and where.
    payouts: BTreeMap<String, (String, String, Decimal)>,
}

impl Spending {
    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        match event_type {
            ApplicationSubmitted::TYPE => self.books.submitted(decode(event_type, data)?),
            PayoutIssued::TYPE => {
                let e: PayoutIssued = decode(event_type, data)?;
                if let Some(f) = self.figures(&e.pool, &e.application, e.paid_on) {
                    f.payouts += 1;
                    f.paid += e.amount;
                    self.payouts.insert(e.payout, (e.pool, e.application, e.amount));
                }
            }
            PayoutFailed::TYPE => {
                let e: PayoutFailed = decode(event_type, data)?;
                if let Some((pool, application, amount)) = self.payouts.get(&e.payout).cloned() {
                    if let Some(f) = self.figures(&pool, &application, e.failed_on) {
                        f.failed += amount;
                    }
                }
            }
            RecoveryRecorded::TYPE => {
                let e: RecoveryRecorded = decode(event_type, data)?;
                if let Some(f) = self.figures(&e.pool, &e.application, e.recovered_on) {
                    f.recovered += e.amount;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn figures(&mut self, pool: &str, application: &str, on: NaiveDate) -> Option<&mut Figures> {
        let b = self.books.get(application)?;
        let key = SpendingKey {
            pool: pool.to_string(),
            month: month(on),
            county: b.county.clone(),
            program: b.program.clone(),
            funding: b.funding.clone(),
        };
        Some(self.rows.entry(key).or_default())
    }

    /// Every row of `spending`, in primary-key order.
    pub fn rows(&self) -> Vec<(SpendingKey, Figures)> {
        self.rows.iter().map(|(k, f)| (k.clone(), f.clone())).collect()
    }
}
