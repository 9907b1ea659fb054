//! Fund pools, their counties, locked balances and yearly expansion quotas.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{
    ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, PayoutIssued, RecoveryRecorded,
};
use events::setup::{
    CountyRegistered, ExpansionQuotaSet, HistoricalBalanceLocked, NoticePeriodSet, PoolRegistered,
};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::{decode, ProjectionError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pools {
    pub pools: BTreeMap<String, Pool>,
    /// County → its pool.
    pub counties: BTreeMap<String, String>,
    /// (pool, year) → the money held against that year's quota. Kept apart from the
    /// pool's settings so that the events of one application alone fold to the change they
    /// make (what the live path of `quota_usage` writes as a delta).
    pub usage: BTreeMap<(String, i32), Usage>,
    /// Application → the quota money it holds committed: (pool, year, amount).
    pub reservations: BTreeMap<String, (String, i32, Decimal)>,
}

/// Money held against one pool's quota in one year.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub committed: Decimal,
    pub paid: Decimal,
    pub recovered: Decimal,
}

/// A year's expansion quota as the finance bureau set it (ExpansionQuotaSet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSetting {
    pub ratio: Decimal,
    pub cap: Decimal,
    pub filing_document: String,
}

/// One row of `quota_usage`, column for column: the cap and the money held against it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuotaRow {
    pub pool: String,
    pub year: i32,
    pub cap: Decimal,
    pub committed: Decimal,
    pub paid: Decimal,
    pub recovered: Decimal,
}

impl QuotaRow {
    pub fn remaining(&self) -> Decimal {
        self.cap - self.committed - self.paid + self.recovered
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub counties: BTreeMap<String, String>,
    pub balance: Option<Balance>,
    pub quotas: BTreeMap<i32, QuotaSetting>,
    /// Working days of a public notice, when the pool has set it.
    pub notice_working_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub as_of: NaiveDate,
    pub amount: Decimal,
    pub document: String,
}

/// One pool's expansion quota in one policy year. Invariant (kept by the commands, checked
/// by [`Quota::check`]): `committed + paid − recovered ≤ cap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub ratio: Decimal,
    pub cap: Decimal,
    pub filing_document: String,
    pub committed: Decimal,
    pub paid: Decimal,
    pub recovered: Decimal,
}

impl Quota {
    pub fn used(&self) -> Decimal {
        self.committed + self.paid - self.recovered
    }

    pub fn remaining(&self) -> Decimal {
        self.cap - self.used()
    }

    /// The invariant of DOMAIN.md; an assertion on internal facts, on in release builds.
    pub fn check(&self) {
        assert!(self.used() <= self.cap, "quota exceeded: {} used of {}", self.used(), self.cap);
        assert!(self.committed >= Decimal::ZERO && self.paid >= Decimal::ZERO);
    }
}

impl Pools {
    /// Folds one event in. Events this read model does not concern are ignored.
    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        match event_type {
            PoolRegistered::TYPE => {
                let e: PoolRegistered = decode(event_type, data)?;
                self.pools.insert(
                    e.pool,
                    Pool {
                        name: e.name,
                        counties: BTreeMap::new(),
                        balance: None,
                        quotas: BTreeMap::new(),
                        notice_working_days: None,
                    },
                );
            }
            CountyRegistered::TYPE => {
                let e: CountyRegistered = decode(event_type, data)?;
                if let Some(pool) = self.pools.get_mut(&e.pool) {
                    pool.counties.insert(e.county.clone(), e.name);
                }
                self.counties.insert(e.county, e.pool);
            }
            HistoricalBalanceLocked::TYPE => {
                let e: HistoricalBalanceLocked = decode(event_type, data)?;
                if let Some(pool) = self.pools.get_mut(&e.pool) {
                    pool.balance =
                        Some(Balance { as_of: e.as_of, amount: e.amount, document: e.document });
                }
            }
            ExpansionQuotaSet::TYPE => {
                let e: ExpansionQuotaSet = decode(event_type, data)?;
                if let Some(pool) = self.pools.get_mut(&e.pool) {
                    pool.quotas.insert(
                        e.year,
                        QuotaSetting {
                            ratio: e.ratio,
                            cap: e.cap,
                            filing_document: e.filing_document,
                        },
                    );
                }
            }
            NoticePeriodSet::TYPE => {
                let e: NoticePeriodSet = decode(event_type, data)?;
                if let Some(pool) = self.pools.get_mut(&e.pool) {
                    pool.notice_working_days = Some(e.working_days);
                }
            }
            ApplicationApproved::TYPE => {
                let e: ApplicationApproved = decode(event_type, data)?;
                if e.counts_against_quota {
                    self.usage_mut(&e.pool, e.year).committed += e.amount;
                    self.reservations.insert(e.application, (e.pool, e.year, e.amount));
                }
            }
            PayoutIssued::TYPE => {
                let e: PayoutIssued = decode(event_type, data)?;
                // Committed money becomes paid; the reservation is spent, payout by payout
                // where an application is paid per payee. A reissue finds it spent.
                let reserved = self.reservations.get_mut(&e.application);
                if let (true, Some(r)) = (e.counts_against_quota, reserved) {
                    r.2 -= e.amount;
                    if r.2 <= Decimal::ZERO {
                        self.reservations.remove(&e.application);
                    }
                    let u = self.usage_mut(&e.pool, e.year);
                    u.committed -= e.amount;
                    u.paid += e.amount;
                }
            }
            RecoveryRecorded::TYPE => {
                let e: RecoveryRecorded = decode(event_type, data)?;
                if e.counts_against_quota {
                    self.usage_mut(&e.pool, e.year).recovered += e.amount;
                }
            }
            ApplicationRejected::TYPE | ApplicationWithdrawn::TYPE => {
                let application = if event_type == ApplicationRejected::TYPE {
                    decode::<ApplicationRejected, _>(event_type, data)?.application
                } else {
                    decode::<ApplicationWithdrawn, _>(event_type, data)?.application
                };
                if let Some((pool, year, amount)) = self.reservations.remove(&application) {
                    self.usage_mut(&pool, year).committed -= amount;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A pool's quota in a year: its setting with the money held against it.
    pub fn quota(&self, pool: &str, year: i32) -> Option<Quota> {
        let s = self.pools.get(pool)?.quotas.get(&year)?;
        let u = self.usage.get(&(pool.to_string(), year)).cloned().unwrap_or_default();
        Some(Quota {
            ratio: s.ratio,
            cap: s.cap,
            filing_document: s.filing_document.clone(),
            committed: u.committed,
            paid: u.paid,
            recovered: u.recovered,
        })
    }

    fn usage_mut(&mut self, pool: &str, year: i32) -> &mut Usage {
        self.usage.entry((pool.to_string(), year)).or_default()
    }

    /// The `quota_usage` row of (pool, year) as this fold has it: the cap of the quota set
    /// (0 when this fold has not seen it) and the money held against it.
    pub fn quota_row(&self, pool: &str, year: i32) -> QuotaRow {
        let cap = self.pools.get(pool).and_then(|p| p.quotas.get(&year)).map(|s| s.cap);
        let u = self.usage.get(&(pool.to_string(), year)).cloned().unwrap_or_default();
        QuotaRow {
            pool: pool.to_string(),
            year,
            cap: cap.unwrap_or_default(),
            committed: u.committed,
            paid: u.paid,
            recovered: u.recovered,
        }
    }

    /// The (pool, year) keys of every quota set or used, in order.
    pub fn quota_keys(&self) -> std::collections::BTreeSet<(String, i32)> {
        let set = self
            .pools
            .iter()
            .flat_map(|(pool, p)| p.quotas.keys().map(move |y| (pool.clone(), *y)));
        set.chain(self.usage.keys().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pool_is_registered_locked_and_given_a_quota() {
        let mut p = Pools::default();
        let events = [
            ("PoolRegistered", json!({"pool": "370800", "name": "济宁市"})),
            ("CountyRegistered", json!({"county": "370811", "name": "任城区", "pool": "370800"})),
            (
                "HistoricalBalanceLocked",
                json!({"pool": "370800", "as_of": "2023-12-31", "amount": "100000000.00", "document": "d"}),
            ),
            (
                "ExpansionQuotaSet",
                json!({"pool": "370800", "year": 2024, "ratio": "0.15", "cap": "15000000.00", "filing_document": "f", "policy": "p"}),
            ),
            ("SomethingElse", json!({})),
        ];
        for (t, d) in &events {
            p.apply(t, d).unwrap();
        }
        let pool = &p.pools["370800"];
        assert_eq!(pool.counties["370811"], "任城区");
        assert_eq!(p.counties["370811"], "370800");
        assert_eq!(pool.balance.as_ref().unwrap().amount, Decimal::new(10_000_000_000, 2));
        let quota = p.quota("370800", 2024).unwrap();
        assert_eq!(quota.remaining(), Decimal::new(1_500_000_000, 2));
        quota.check();
    }

    #[test]
    fn a_row_that_does_not_match_its_schema_is_an_error() {
        let mut p = Pools::default();
        let err = p.apply("PoolRegistered", &json!({"pool": 370800})).unwrap_err();
        assert_eq!(err.event_type, "PoolRegistered");
    }
}
