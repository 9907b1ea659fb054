//! Sealed periods (结账): a pool's month closed so that reported figures never move.
//!
//! The seal is a `PeriodSealed` event on `period-<pool>-<month>`, tagged
//! `seal:<pool>/<month>` ([`Tag::period_seal`]). Every command that dates money in a month
//! (a payout's `paid_on`, a settlement's date, a recovery's date) reads that tag (at most one
//! event), refuses with `period_sealed` if it holds a seal ([`refuse_if_sealed`], pure), and
//! appends on the condition that no seal was recorded since its read ([`open_periods`]).
//!
//! Why no posting slips past a seal: the seal takes the tag's lock *before* it reads the
//! month's totals and holds it to its commit. A posting that read "no seal" and appends after
//! the seal committed fails its condition (the seal's transaction was not in its snapshot),
//! reads again and is refused. A posting whose append ran first holds the same lock (a
//! condition's tags are locked) until it commits, so the seal's lock waits for it and the
//! seal's totals, read after, include it.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use events::period::{PeriodRow, PeriodSealed, PeriodTotals};
use events::{DomainEvent, Metadata, Tag};
use rust_decimal::Decimal;

use super::{execute, Attempt, CommandError, Decided};
use crate::store::{lock_tags, Append, AppendCondition, AppendError, ExpectedVersion, NewEvent};

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    first: NaiveDate,
}

impl Month {
    /// Exactly the form [`Month::parse`] accepts, as a regular expression (the OpenAPI
    /// document's).
    pub const PATTERN: &'static str = "^[0-9]{4}-(0[1-9]|1[0-2])$";

    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        // Digits only: `+999-01` would otherwise pass as the year 999.
        if y.len() != 4 || m.len() != 2 || !digits(y) || !digits(m) {
            return None;
        }
        let first = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
        Some(Month { first })
    }

    pub fn of(on: NaiveDate) -> Month {
        Month { first: on.with_day(1).expect("day 1 exists") }
    }

    /// The last day of the month.
    pub fn last_day(&self) -> NaiveDate {
        let next = if self.first.month() == 12 {
            NaiveDate::from_ymd_opt(self.first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.first.year(), self.first.month() + 1, 1)
        };
        next.expect("the next month exists").pred_opt().expect("a day before")
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.first.format("%Y-%m"))
    }
}

pub fn period_stream(pool: &str, month: Month) -> String {
    format!("period-{pool}-{month}")
}

/// The rule: money dated `on` in `pool` may be booked unless one of `seals` closes its month.
/// `seals` are the recorded seals of the months concerned.
pub fn refuse_if_sealed(seals: &[PeriodSealed], pool: &str, on: NaiveDate) -> Result<(), Sealed> {
    let month = Month::of(on).to_string();
    match seals.iter().find(|s| s.pool == pool && s.month == month) {
        Some(s) => Err(Sealed { pool: pool.to_string(), month, on, sealed_on: s.sealed_on }),
        None => Ok(()),
    }
}

/// A posting refused because its month is sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{month} of pool {pool} was sealed on {sealed_on}: nothing dated {on} can be recorded; \
     record a correction dated in an open month"
)]
pub struct Sealed {
    pub pool: String,
    pub month: String,
    pub on: NaiveDate,
    pub sealed_on: NaiveDate,
}

/// Reads the seals of the months `postings` (pool, business date) fall in, refuses a sealed
/// one, and returns the condition the posting's append must carry (no seal since this read).
pub(crate) async fn open_periods(
    a: &mut Attempt<'_>,
    postings: &[(String, NaiveDate)],
) -> Result<Result<AppendCondition, Sealed>, sqlx::Error> {
    let mut tags: Vec<Tag> = postings
        .iter()
        .map(|(pool, on)| Tag::period_seal(pool, &Month::of(*on).to_string()))
        .collect();
    tags.sort();
    tags.dedup();
    let read = a.read_tagged(&tags).await?;
    let seals: Vec<PeriodSealed> = read
        .events
        .iter()
        .filter(|e| e.event_type == PeriodSealed::TYPE)
        .map(|e| serde_json::from_value(e.data.clone()).expect("a recorded seal"))
        .collect();
    for (pool, on) in postings {
        if let Err(s) = refuse_if_sealed(&seals, pool, *on) {
            return Ok(Err(s));
        }
    }
    Ok(Ok(AppendCondition { tags, after: read.read_point }))
}

#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("pool {0} is not registered")]
    PoolNotFound(String),
    #[error(
        "{month} has not ended (it ends on {last_day}); a month is sealed from the next day on"
    )]
    NotEnded { month: String, last_day: NaiveDate },
    #[error("{month} of pool {pool} is already sealed (on {sealed_on})")]
    AlreadySealed { pool: String, month: String, sealed_on: NaiveDate },
    #[error(transparent)]
    Store(#[from] AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl PeriodError {
    pub fn code(&self) -> &'static str {
        match self {
            PeriodError::Invalid { .. } => "validation_failed",
            PeriodError::PoolNotFound(_) => "pool_not_found",
            PeriodError::NotEnded { .. } => "period_not_ended",
            PeriodError::AlreadySealed { .. } => "period_already_sealed",
            PeriodError::Store(_) | PeriodError::Database(_) => "internal",
        }
    }
}

impl CommandError for PeriodError {
    fn store(&self) -> Option<&AppendError> {
        match self {
            PeriodError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Seals a pool's month: records its totals (the spending read model, after every posting
/// in flight has committed) and the head of the log, signed with `signer` when given.
pub async fn seal(
    db: impl Into<super::Db<'_>>,
    pool: &policy::DivisionCode,
    month: Month,
    signer: Option<&ed25519_dalek::SigningKey>,
    actor: &str,
    today: NaiveDate,
) -> Result<PeriodSealed, PeriodError> {
    use ed25519_dalek::Signer;
    let mut db = db.into();
    if month.last_day() >= today {
        return Err(PeriodError::NotEnded { month: month.to_string(), last_day: month.last_day() });
    }
    let pool_code = pool.to_string();
    let tag = Tag::period_seal(&pool_code, &month.to_string());
    let stream = period_stream(&pool_code, month);
    execute!(&mut db, PeriodError, |a| {
        // The lock first: postings in flight commit before the totals are read (module doc).
        lock_tags(a.conn(), std::slice::from_ref(&tag)).await?;
        let read = a.read_tagged(std::slice::from_ref(&tag)).await?;
        if let Some(e) = read.events.iter().find(|e| e.event_type == PeriodSealed::TYPE) {
            let s: PeriodSealed = serde_json::from_value(e.data.clone()).expect("a recorded seal");
            return Err(PeriodError::AlreadySealed {
                pool: pool_code.clone(),
                month: s.month,
                sealed_on: s.sealed_on,
            });
        }
        let (found, _) = super::setup::read_pool(a, pool).await.map_err(|e| match e {
            super::setup::SetupError::Database(e) => PeriodError::Database(e),
            other => PeriodError::Invalid { field: "pool", message: other.to_string() },
        })?;
        if found.is_none() {
            return Err(PeriodError::PoolNotFound(pool_code.clone()));
        }
        let stored: Vec<(String, String, String, i32, Decimal, Decimal, Decimal)> = sqlx::query_as(
            "SELECT county, program, funding, payouts, paid, failed, recovered FROM spending
             WHERE pool = $1 AND month = $2
             ORDER BY county COLLATE \"C\", program COLLATE \"C\", funding COLLATE \"C\"",
        )
        .bind(&pool_code)
        .bind(month.to_string())
        .fetch_all(a.conn())
        .await?;
        let mut totals = PeriodTotals::default();
        let rows: Vec<PeriodRow> = stored
            .into_iter()
            .map(|(county, program, funding, payouts, paid, failed, recovered)| {
                let t = PeriodTotals {
                    payouts: i64::from(payouts),
                    paid,
                    failed,
                    recovered,
                    net: paid - failed - recovered,
                };
                totals.payouts += t.payouts;
                totals.paid += t.paid;
                totals.failed += t.failed;
                totals.recovered += t.recovered;
                totals.net += t.net;
                PeriodRow { county, program, funding, totals: t }
            })
            .collect();
        crate::store::sequence(a.conn()).await?;
        let head: Option<(i64, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT position, hash FROM log ORDER BY position DESC LIMIT 1")
                .fetch_optional(a.conn())
                .await?;
        let (log_position, log_hash) = head.map_or((0, None), |(p, h)| (p, h.map(hex::encode)));
        let sealed_at: DateTime<Utc> = Utc::now();
        let mut sealed = PeriodSealed {
            pool: pool_code.clone(),
            month: month.to_string(),
            totals,
            rows,
            log_position,
            log_hash,
            sealed_at,
            sealed_on: today,
            sealed_by: actor.to_string(),
            public_key: None,
            signature: None,
        };
        if let Some(key) = signer {
            let signature = key.sign(sealed.message().as_bytes());
            sealed.public_key = Some(hex::encode(key.verifying_key().to_bytes()));
            sealed.signature = Some(hex::encode(signature.to_bytes()));
        }
        let event = NewEvent {
            stream_id: stream.clone(),
            event_type: PeriodSealed::TYPE.to_string(),
            schema_version: PeriodSealed::VERSION,
            data: serde_json::to_value(&sealed).expect("events serialise"),
            metadata: Metadata {
                actor: Some(actor.to_string()),
                pool: Some(pool_code.clone()),
                ..Metadata::default()
            },
            tags: vec![tag.clone()],
            business_date: Some(today),
        };
        let appending = Append {
            events: vec![event],
            expected: vec![(stream.clone(), ExpectedVersion::NoStream)],
            condition: Some(AppendCondition { tags: vec![tag.clone()], after: read.read_point }),
        };
        Ok(Decided::append(appending, sealed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(pool: &str, month: &str) -> PeriodSealed {
        PeriodSealed {
            pool: pool.into(),
            month: month.into(),
            totals: PeriodTotals::default(),
            rows: vec![],
            log_position: 1,
            log_hash: None,
            sealed_at: Utc::now(),
            sealed_on: NaiveDate::from_ymd_opt(2024, 12, 5).unwrap(),
            sealed_by: "f".into(),
            public_key: None,
            signature: None,
        }
    }

    /// A signed year passed `Month::parse` as its number (`+999-01` as the month 0999-01) though
    /// `Month::PATTERN`, what the OpenAPI document promises, refuses it.
    #[test]
    fn a_month_is_four_digits_a_hyphen_and_two_digits_as_its_pattern_says() {
        for ok in ["2024-11", "0001-01", "9999-12"] {
            assert!(Month::parse(ok).is_some(), "{ok}");
        }
        for bad in ["+999-01", "-999-01", "2024-+1", "2024-13", "2024-00", "24-11", "2024-1"] {
            assert!(Month::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_sealed_month_refuses_its_own_dates_only_and_only_for_its_pool() {
        let seals = [seal("371500", "2024-11")];
        let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
        assert!(refuse_if_sealed(&seals, "371500", d(11, 1)).is_err());
        assert!(refuse_if_sealed(&seals, "371500", d(11, 30)).is_err());
        assert!(refuse_if_sealed(&seals, "371500", d(12, 1)).is_ok());
        assert!(refuse_if_sealed(&seals, "371500", d(10, 31)).is_ok());
        assert!(refuse_if_sealed(&seals, "370800", d(11, 15)).is_ok());
    }

    #[test]
    fn months_parse_strictly_and_know_their_last_day() {
        assert_eq!(Month::parse("2024-02").unwrap().last_day().to_string(), "2024-02-29");
        assert_eq!(Month::parse("2024-12").unwrap().last_day().to_string(), "2024-12-31");
        for bad in ["2024-13", "2024-1", "24-01", "2024/01", "2024-01-01", ""] {
            assert!(Month::parse(bad).is_none(), "{bad}");
        }
    }
}
