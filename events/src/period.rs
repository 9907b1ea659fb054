//! Sealed periods (结账): a pool's month closed to late postings.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// A month of one pool sealed (月度结账): anything dated in it (payouts, settlements,
/// recoveries) is refused afterwards; corrections go into the open month as their own events.
/// Recorded on the stream `period-<pool>-<month>` and tagged `seal:<pool>/<month>`, the tag a
/// posting reads (and conditions its append on) to learn cheaply whether its month is sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodSealed {
    pub pool: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The month's totals over the pool, from the spending read model at sealing.
    pub totals: PeriodTotals,
    /// The same, by county, program and funding source.
    pub rows: Vec<PeriodRow>,
    /// The head of the log (position and chain hash) when the seal was taken.
    pub log_position: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_hash: Option<String>,
    pub sealed_at: DateTime<Utc>,
    pub sealed_on: NaiveDate,
    pub sealed_by: String,
    /// Hex Ed25519 public key and signature over [`PeriodSealed::message`], as checkpoints are
    /// signed; absent when the sealing process held no checkpoint key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodTotals {
    pub payouts: i64,
    pub paid: Decimal,
    pub failed: Decimal,
    pub recovered: Decimal,
    pub net: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRow {
    pub county: String,
    pub program: String,
    pub funding: String,
    pub totals: PeriodTotals,
}

impl PeriodSealed {
    /// The bytes signed: a fixed prefix, then pool, month, log position and hash, the totals
    /// (money with two decimals) and the time, one per line.
    pub fn message(&self) -> String {
        let t = &self.totals;
        format!(
            "fundledger period seal v1\n{}\n{}\n{}\n{}\n{}\n{:.2}\n{:.2}\n{:.2}\n{:.2}\n{}",
            self.pool,
            self.month,
            self.log_position,
            self.log_hash.as_deref().unwrap_or(""),
            t.payouts,
            t.paid,
            t.failed,
            t.recovered,
            t.net,
            self.sealed_at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
    }
}

impl DomainEvent for PeriodSealed {
    const TYPE: &'static str = "PeriodSealed";
    const VERSION: i32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_as_written_and_its_message_names_what_it_covers() {
        let seal = PeriodSealed {
            pool: "371500".into(),
            month: "2024-11".into(),
            totals: PeriodTotals {
                payouts: 2,
                paid: Decimal::new(120000, 2),
                failed: Decimal::ZERO,
                recovered: Decimal::ZERO,
                net: Decimal::new(120000, 2),
            },
            rows: vec![PeriodRow {
                county: "371502".into(),
                program: "vocational_training".into(),
                funding: "expansion_pilot".into(),
                totals: PeriodTotals::default(),
            }],
            log_position: 42,
            log_hash: Some("ab".into()),
            sealed_at: "2024-12-05T01:02:03.000004Z".parse().unwrap(),
            sealed_on: NaiveDate::from_ymd_opt(2024, 12, 5).unwrap(),
            sealed_by: "财政 王".into(),
            public_key: None,
            signature: None,
        };
        let text = serde_json::to_string(&seal).unwrap();
        assert_eq!(serde_json::from_str::<PeriodSealed>(&text).unwrap(), seal);
        assert_eq!(
            seal.message(),
            "fundledger period seal v1\n371500\n2024-11\n42\nab\n2\n1200.00\n0.00\n0.00\n1200.00\n2024-12-05T01:02:03.000004Z"
        );
    }
}
