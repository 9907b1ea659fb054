//! Setting up a fund pool: register it and its counties, lock its historical balance (once,
//! ever), set a year's expansion quota.

use chrono::{Datelike, NaiveDate};
use events::setup::{
    CountyRegistered, ExpansionQuotaSet, HistoricalBalanceLocked, NoticePeriodSet, PoolRegistered,
};
use events::{DomainEvent, Metadata, Tag};
use policy::{quota_cap, Amount, DivisionCode, Program, Ratio, Rules};
use projections::pools::{Pool, Pools};

use super::{execute, Attempt, CommandError, Decided};
use crate::publishing::{policies_in, POLICIES_TAG};
use crate::store::{read_tagged, Append, AppendCondition, AppendError, ExpectedVersion, NewEvent};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("pool {0} is not registered; register it first (POST /v1/pools)")]
    PoolNotFound(String),
    #[error("pool {0} is already registered")]
    PoolAlreadyRegistered(String),
    #[error("county {0} is already registered")]
    CountyAlreadyRegistered(String),
    #[error(
        "the historical balance of pool {0} is already locked; it is locked once and never changed"
    )]
    BalanceAlreadyLocked(String),
    #[error(
        "the historical balance of pool {0} is not locked yet; lock it before setting a quota"
    )]
    BalanceNotLocked(String),
    #[error("the {year} expansion quota of pool {pool} is already set")]
    QuotaAlreadySet { pool: String, year: i32 },
    #[error("no published expansion-quota policy covers pool {pool} in {year}; publish one first")]
    NoPolicyInForce { pool: String, year: i32 },
    /// 鲁人社发〔2024〕8号 item 六: the quota is a share of the balance 截至2023年12月31日.
    #[error(
        "as_of: the expansion-quota policy {policy} takes the locked historical balance as of \
         {expected}; a balance as of {as_of} cannot be the base of its quota"
    )]
    BalanceDateMismatch { as_of: NaiveDate, expected: NaiveDate, policy: String },
    #[error("ratio {ratio} is above the {ceiling} the policy {policy} allows")]
    RatioAboveCeiling { ratio: String, ceiling: String, policy: String },
    #[error(transparent)]
    Store(#[from] AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SetupError {
    /// The stable, machine-readable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            SetupError::Invalid { .. } => "validation_failed",
            SetupError::PoolNotFound(_) => "pool_not_found",
            SetupError::PoolAlreadyRegistered(_) => "pool_already_registered",
            SetupError::CountyAlreadyRegistered(_) => "county_already_registered",
            SetupError::BalanceAlreadyLocked(_) => "balance_already_locked",
            SetupError::BalanceNotLocked(_) => "balance_not_locked",
            SetupError::QuotaAlreadySet { .. } => "quota_already_set",
            SetupError::NoPolicyInForce { .. } => "no_policy_in_force",
            SetupError::RatioAboveCeiling { .. } => "ratio_above_ceiling",
            SetupError::BalanceDateMismatch { .. } => "balance_date_mismatch",
            SetupError::Store(_) | SetupError::Database(_) => "internal",
        }
    }
}

impl CommandError for SetupError {
    fn store(&self) -> Option<&AppendError> {
        match self {
            SetupError::Store(e) => Some(e),
            _ => None,
        }
    }
}

pub fn pool_stream(pool: &DivisionCode) -> String {
    format!("pool-{pool}")
}

fn county_stream(county: &DivisionCode) -> String {
    format!("county-{county}")
}

fn new_event<E: DomainEvent>(
    stream: String,
    event: &E,
    actor: &str,
    pool: &DivisionCode,
    tags: Vec<Tag>,
    on: Option<NaiveDate>,
) -> NewEvent {
    NewEvent {
        stream_id: stream,
        event_type: E::TYPE.to_string(),
        schema_version: E::VERSION,
        data: serde_json::to_value(event).expect("events serialise"),
        metadata: Metadata {
            actor: Some(actor.to_string()),
            pool: Some(pool.to_string()),
            ..Metadata::default()
        },
        tags,
        business_date: on,
    }
}

/// The pool's state from its own stream, and the stream's version.
pub(crate) async fn read_pool(
    a: &mut Attempt<'_>,
    pool: &DivisionCode,
) -> Result<(Option<Pool>, i64), SetupError> {
    let events = a.read_stream(&pool_stream(pool)).await?;
    let mut pools = Pools::default();
    for e in &events {
        pools.apply(&e.event_type, &e.data).expect("recorded events read back");
    }
    Ok((pools.pools.remove(&pool.to_string()), events.last().map_or(0, |e| e.stream_version)))
}

fn non_empty(field: &'static str, value: &str) -> Result<(), SetupError> {
    if value.trim().is_empty() {
        return Err(SetupError::Invalid { field, message: "must not be empty".into() });
    }
    Ok(())
}

pub async fn register_pool(
    db: impl Into<super::Db<'_>>,
    pool: &DivisionCode,
    name: &str,
    actor: &str,
) -> Result<(), SetupError> {
    let mut db = db.into();
    non_empty("name", name)?;
    let event = PoolRegistered { pool: pool.to_string(), name: name.trim().to_string() };
    execute!(&mut db, SetupError, |a| {
        if read_pool(a, pool).await?.0.is_some() {
            return Err(SetupError::PoolAlreadyRegistered(pool.to_string()));
        }
        // No condition: the only possible conflict is the stream appearing meanwhile, which
        // the next attempt reads.
        let appending = Append {
            events: vec![new_event(pool_stream(pool), &event, actor, pool, vec![], None)],
            expected: vec![(pool_stream(pool), ExpectedVersion::NoStream)],
            condition: None,
        };
        Ok(Decided::append(appending, ()))
    })
}

pub async fn register_county(
    db: impl Into<super::Db<'_>>,
    county: &DivisionCode,
    name: &str,
    pool: &DivisionCode,
    actor: &str,
) -> Result<(), SetupError> {
    let mut db = db.into();
    non_empty("name", name)?;
    let event = CountyRegistered {
        county: county.to_string(),
        name: name.trim().to_string(),
        pool: pool.to_string(),
    };
    execute!(&mut db, SetupError, |a| {
        // Pools are never removed: once seen, the pool stays, so no condition is needed on it.
        if read_pool(a, pool).await?.0.is_none() {
            return Err(SetupError::PoolNotFound(pool.to_string()));
        }
        if !a.read_stream(&county_stream(county)).await?.is_empty() {
            return Err(SetupError::CountyAlreadyRegistered(county.to_string()));
        }
        let appending = Append {
            events: vec![new_event(county_stream(county), &event, actor, pool, vec![], None)],
            expected: vec![(county_stream(county), ExpectedVersion::NoStream)],
            condition: None,
        };
        Ok(Decided::append(appending, ()))
    })
}

/// Locks the pool's historical balance. Once, ever: of any number of concurrent requests,
/// one records the balance and the others get `balance_already_locked`.
pub async fn lock_balance(
    db: impl Into<super::Db<'_>>,
    pool: &DivisionCode,
    as_of: NaiveDate,
    amount: Amount,
    document: &str,
    today: NaiveDate,
    actor: &str,
) -> Result<(), SetupError> {
    let mut db = db.into();
    non_empty("document", document)?;
    if as_of > today {
        return Err(SetupError::Invalid {
            field: "as_of",
            message: format!("{as_of} is in the future"),
        });
    }
    execute!(&mut db, SetupError, |a| {
        let published =
            read_tagged(a.conn(), &[Tag::parse(POLICIES_TAG).expect("a valid tag")]).await?;
        let policies = policies_in(&published.events);
        let quota_policy = balance_policy(&policies, *pool, today).ok_or_else(|| {
            SetupError::NoPolicyInForce { pool: pool.to_string(), year: as_of.year() + 1 }
        })?;
        let Rules::ExpansionQuota(rules) = &quota_policy.rules else {
            unreachable!("balance_policy returns expansion-quota policies")
        };
        rules.check_balance_date(as_of).map_err(|expected| SetupError::BalanceDateMismatch {
            as_of,
            expected,
            policy: quota_policy.id.to_string(),
        })?;
        let (state, version) = read_pool(a, pool).await?;
        let state = state.ok_or_else(|| SetupError::PoolNotFound(pool.to_string()))?;
        if state.balance.is_some() {
            return Err(SetupError::BalanceAlreadyLocked(pool.to_string()));
        }
        let event = HistoricalBalanceLocked {
            pool: pool.to_string(),
            as_of,
            amount: amount.value(),
            document: document.trim().to_string(),
        };
        let appending = Append {
            events: vec![new_event(pool_stream(pool), &event, actor, pool, vec![], Some(as_of))],
            expected: vec![(pool_stream(pool), ExpectedVersion::Exact(version))],
            condition: Some(AppendCondition {
                tags: vec![Tag::parse(POLICIES_TAG).expect("a valid tag")],
                after: published.read_point,
            }),
        };
        Ok(Decided::append(appending, ()))
    })
}

/// The expansion-quota policy whose balance date a pool's locked balance must carry: the one in
/// force for the pool today, else the latest that applies to the pool at all (the 2024 pilot
/// ended on 2024-12-31, but its balance is still the base a ledger started later records).
fn balance_policy(
    policies: &[policy::Policy],
    pool: DivisionCode,
    today: NaiveDate,
) -> Option<&policy::Policy> {
    policy::select(policies, Program::ExpansionQuota, pool, today).ok().or_else(|| {
        policies
            .iter()
            .filter(|p| p.program() == Program::ExpansionQuota)
            .filter(|p| p.periods().any(|period| period.region.contains(&pool)))
            .max_by(|a, b| a.effective_from.cmp(&b.effective_from).then(b.id.cmp(&a.id)))
    })
}

/// The years a policy, a quota and a report can be of.
pub const POLICY_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Sets a year's expansion quota: `ratio × locked balance`, rounded down to the fen, under the
/// published expansion-quota policy in force on January 1st of that year, whose ratio is the
/// ceiling. Returns the cap.
pub async fn set_quota(
    db: impl Into<super::Db<'_>>,
    pool: &DivisionCode,
    year: i32,
    ratio: Ratio,
    filing_document: &str,
    actor: &str,
) -> Result<Amount, SetupError> {
    let mut db = db.into();
    non_empty("filing_document", filing_document)?;
    let jan_1 = NaiveDate::from_ymd_opt(year, 1, 1)
        .filter(|d| POLICY_YEARS.contains(&d.year()))
        .ok_or_else(|| SetupError::Invalid {
            field: "year",
            message: format!("{year} is not a policy year"),
        })?;
    let quota_tag = Tag::pool_year(&pool.to_string(), year);
    execute!(&mut db, SetupError, |a| {
        let published =
            read_tagged(a.conn(), &[Tag::parse(POLICIES_TAG).expect("a valid tag")]).await?;
        let policies = policies_in(&published.events);
        let policy = policy::select(&policies, Program::ExpansionQuota, *pool, jan_1)
            .map_err(|_| SetupError::NoPolicyInForce { pool: pool.to_string(), year })?;
        let Rules::ExpansionQuota(rules) = &policy.rules else {
            unreachable!("select returns a policy of the program asked for")
        };
        if ratio.value() > rules.ratio.value() {
            return Err(SetupError::RatioAboveCeiling {
                ratio: ratio.value().to_string(),
                ceiling: rules.ratio.value().to_string(),
                policy: policy.id.to_string(),
            });
        }
        let (state, version) = read_pool(a, pool).await?;
        let state = state.ok_or_else(|| SetupError::PoolNotFound(pool.to_string()))?;
        let balance =
            state.balance.ok_or_else(|| SetupError::BalanceNotLocked(pool.to_string()))?;
        if state.quotas.contains_key(&year) {
            return Err(SetupError::QuotaAlreadySet { pool: pool.to_string(), year });
        }
        let cap =
            quota_cap(Amount::from_decimal(balance.amount).expect("a recorded balance"), ratio);
        let event = ExpansionQuotaSet {
            pool: pool.to_string(),
            year,
            ratio: ratio.value(),
            cap: cap.value(),
            filing_document: filing_document.trim().to_string(),
            policy: policy.id.to_string(),
        };
        let appending = Append {
            events: vec![new_event(
                pool_stream(pool),
                &event,
                actor,
                pool,
                vec![quota_tag.clone()],
                Some(jan_1),
            )],
            expected: vec![(pool_stream(pool), ExpectedVersion::Exact(version))],
            condition: Some(AppendCondition {
                tags: vec![Tag::parse(POLICIES_TAG).expect("a valid tag")],
                after: published.read_point,
            }),
        };
        Ok(Decided::append(appending, cap))
    })
}

/// Longest public notice a pool may set, in working days.
pub const NOTICE_WORKING_DAYS_MAX: u32 = 30;

/// Sets the length of the pool's public notices in working days (DOMAIN.md: 5 by default).
pub async fn set_notice_period(
    db: impl Into<super::Db<'_>>,
    pool: &DivisionCode,
    working_days: u32,
    document: &str,
    actor: &str,
) -> Result<(), SetupError> {
    let mut db = db.into();
    non_empty("document", document)?;
    if !(1..=NOTICE_WORKING_DAYS_MAX).contains(&working_days) {
        return Err(SetupError::Invalid {
            field: "working_days",
            message: format!(
                "must be between 1 and {NOTICE_WORKING_DAYS_MAX} working days; got {working_days}"
            ),
        });
    }
    execute!(&mut db, SetupError, |a| {
        let (state, version) = read_pool(a, pool).await?;
        if state.is_none() {
            return Err(SetupError::PoolNotFound(pool.to_string()));
        }
        let event = NoticePeriodSet {
            pool: pool.to_string(),
            working_days,
            document: document.trim().to_string(),
        };
        let appending = Append {
            events: vec![new_event(pool_stream(pool), &event, actor, pool, vec![], None)],
            expected: vec![(pool_stream(pool), ExpectedVersion::Exact(version))],
            condition: None,
        };
        Ok(Decided::append(appending, ()))
    })
}
