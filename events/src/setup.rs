//! Events of a fund pool's setup: the pool and its counties, the locked historical balance,
//! the yearly expansion quota. Stored in the stream `pool-<code>` (counties: `county-<code>`).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// A fund pool (统筹地区), a city, was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRegistered {
    pub pool: String,
    pub name: String,
}

impl DomainEvent for PoolRegistered {
    const TYPE: &'static str = "PoolRegistered";
    const VERSION: i32 = 1;
}

/// A county (县/市/区) was registered under a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountyRegistered {
    pub county: String,
    pub name: String,
    pub pool: String,
}

impl DomainEvent for CountyRegistered {
    const TYPE: &'static str = "CountyRegistered";
    const VERSION: i32 = 1;
}

/// The pool's historical balance (封定历史结余基金) was locked, once and for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoricalBalanceLocked {
    pub pool: String,
    pub as_of: NaiveDate,
    /// Yuan, as a decimal string with 2 places.
    pub amount: Decimal,
    pub document: String,
}

impl DomainEvent for HistoricalBalanceLocked {
    const TYPE: &'static str = "HistoricalBalanceLocked";
    const VERSION: i32 = 1;
}

/// The expansion quota (扩大失业保险基金支出额度) of a pool for a policy year was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpansionQuotaSet {
    pub pool: String,
    pub year: i32,
    pub ratio: Decimal,
    /// `ratio × balance`, rounded down to the fen.
    pub cap: Decimal,
    /// The filing (备案) document number.
    pub filing_document: String,
    /// The policy that set the ratio's ceiling and the rounding.
    pub policy: String,
}

impl DomainEvent for ExpansionQuotaSet {
    const TYPE: &'static str = "ExpansionQuotaSet";
    const VERSION: i32 = 1;
}

/// The length of the pool's public notices (公示期), in working days. DOMAIN.md: 5 by default,
/// a setting per pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticePeriodSet {
    pub pool: String,
    pub working_days: u32,
    pub document: String,
}

impl DomainEvent for NoticePeriodSet {
    const TYPE: &'static str = "NoticePeriodSet";
    const VERSION: i32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_stored_as_a_decimal_string() {
        let e = HistoricalBalanceLocked {
            pool: "370800".into(),
            as_of: NaiveDate::from_ymd_opt(2023, 12, 31).unwrap(),
            amount: Decimal::new(10_000_000_000, 2),
            document: "济人社字〔2024〕1号".into(),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["amount"], "100000000.00");
        assert_eq!(json["as_of"], "2023-12-31");
        assert_eq!(serde_json::from_value::<HistoricalBalanceLocked>(json).unwrap(), e);
    }
}
