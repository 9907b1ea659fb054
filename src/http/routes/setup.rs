//! Setup: pools, counties, the locked historical balance, yearly quotas, notice length.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::commands::setup;
use crate::http::extract::{division, require, Command, Place};
use crate::http::problem::Problem;
use crate::http::{money, today, AppState};
use crate::tokens::{Principal, Role};

/// `POST /v1/pools`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    /// 6-digit division code of the pool (统筹地区), e.g. "370800".
    pub code: policy::DivisionCode,
    #[schema(example = "济宁市", pattern = "\\S")]
    pub name: String,
}

/// `POST /v1/counties`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCounty {
    pub code: policy::DivisionCode,
    #[schema(example = "任城区", pattern = "\\S")]
    pub name: String,
    pub pool: policy::DivisionCode,
}

/// `POST /v1/pools/{pool}/historical-balance`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBalance {
    pub as_of: NaiveDate,
    /// Money as a string with at most 2 decimals.
    pub amount: policy::Amount,
    #[schema(pattern = "\\S")]
    pub document: String,
}

/// `POST /v1/pools/{pool}/quotas`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuota {
    #[schema(value_type = crate::http::openapi::PolicyYear)]
    pub year: i32,
    pub ratio: policy::Ratio,
    #[schema(pattern = "\\S")]
    pub filing_document: String,
}

/// `POST /v1/pools/{pool}/notice-period`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNoticePeriod {
    /// 1 to `NOTICE_WORKING_DAYS_MAX` working days.
    #[schema(minimum = 1, maximum = 30)]
    pub working_days: u32,
    #[schema(pattern = "\\S")]
    pub document: String,
}

#[utoipa::path(post, path = "/v1/pools", tag = "setup", request_body = NewPool,
    responses((status = 201, description = "Registered"), (status = 409, description = "pool_already_registered")))]
pub async fn create_pool(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<NewPool>,
) -> Result<Response, Problem> {
    require(&principal, &[Role::Admin], &Place::default())?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome = setup::register_pool(unit.db(), &b.code, &b.name, &principal.label)
        .await
        .map(|()| json!({ "code": b.code.to_string(), "name": b.name.trim() }));
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[utoipa::path(post, path = "/v1/counties", tag = "setup", request_body = NewCounty,
    responses((status = 201, description = "Registered"), (status = 409, description = "county_already_registered"),
              (status = 422, description = "pool_not_found")))]
pub async fn create_county(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<NewCounty>,
) -> Result<Response, Problem> {
    require(&principal, &[Role::Admin], &Place::default())?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome = setup::register_county(unit.db(), &b.code, &b.name, &b.pool, &principal.label)
        .await
        .map(|()| {
            json!({ "code": b.code.to_string(), "name": b.name.trim(), "pool": b.pool.to_string() })
        });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[utoipa::path(post, path = "/v1/pools/{pool}/historical-balance", tag = "setup",
    request_body = NewBalance, params(("pool" = policy::DivisionCode, Path, description = "pool code")),
    responses((status = 201, description = "Locked"), (status = 409, description = "balance_already_locked"),
              (status = 422, description = "pool_not_found, balance_date_mismatch, no_policy_in_force")))]
pub async fn lock_balance(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    principal: Principal,
    command: Command<NewBalance>,
) -> Result<Response, Problem> {
    let code = division("pool", &pool)?;
    require(&principal, &[Role::Admin, Role::CityFinance], &Place::pool(&pool))?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome = setup::lock_balance(
        unit.db(),
        &code,
        b.as_of,
        b.amount,
        &b.document,
        today(),
        &principal.label,
    )
    .await
    .map(|()| {
        json!({ "pool": pool, "as_of": b.as_of, "amount": b.amount.to_string(), "document": b.document.trim() })
    });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[utoipa::path(post, path = "/v1/pools/{pool}/quotas", tag = "setup", request_body = NewQuota,
    params(("pool" = policy::DivisionCode, Path, description = "pool code")),
    responses((status = 201, description = "The cap, rounded down to the fen"),
              (status = 409, description = "quota_already_set, balance_not_locked"),
              (status = 422, description = "pool_not_found, no_policy_in_force, ratio_above_ceiling")))]
pub async fn set_quota(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    principal: Principal,
    command: Command<NewQuota>,
) -> Result<Response, Problem> {
    let code = division("pool", &pool)?;
    require(&principal, &[Role::Admin, Role::CityFinance], &Place::pool(&pool))?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome = setup::set_quota(
        unit.db(),
        &code,
        b.year,
        b.ratio,
        &b.filing_document,
        &principal.label,
    )
    .await
    .map(|cap| {
        json!({
            "pool": pool, "year": b.year, "ratio": b.ratio.to_string(), "cap": money(cap.value()),
            "committed": "0.00", "paid": "0.00", "recovered": "0.00", "remaining": money(cap.value()),
            "filing_document": b.filing_document.trim(),
        })
    });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[utoipa::path(post, path = "/v1/pools/{pool}/notice-period", tag = "setup",
    request_body = NewNoticePeriod, params(("pool" = policy::DivisionCode, Path, description = "pool code")),
    responses((status = 201, description = "Set"), (status = 422, description = "pool_not_found")))]
pub async fn set_notice_period(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    principal: Principal,
    command: Command<NewNoticePeriod>,
) -> Result<Response, Problem> {
    let code = division("pool", &pool)?;
    require(&principal, &[Role::Admin, Role::CityFinance], &Place::pool(&pool))?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome =
        setup::set_notice_period(unit.db(), &code, b.working_days, &b.document, &principal.label)
            .await
            .map(|()| json!({ "pool": pool, "working_days": b.working_days }));
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AsOfQuery {
    /// The quota as it stood at this moment: an RFC 3339 time, or a date (its end, in
    /// Asia/Shanghai). Rebuilt from the log alone.
    #[param(value_type = Option<crate::http::openapi::AsOf>)]
    pub as_of: Option<String>,
}

/// The years an `as_of` may name: the ledger's dates are four-digit years, and anything
/// outside them (`+262143-12-31`) is refused before any arithmetic can overflow.
const AS_OF_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// `as_of` as a moment: a date means its last instant in Asia/Shanghai.
fn as_of_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Problem> {
    use chrono::Datelike;
    let refused = || {
        Problem::invalid(
            "as_of",
            "give an RFC 3339 time (2024-12-31T16:00:00Z) or a date (2024-12-31) of the years 1 to 9999",
        )
    };
    // An unencoded `+` of an offset arrives as a space.
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&s.trim().replace(' ', "+")) {
        let t = t.with_timezone(&chrono::Utc);
        return if AS_OF_YEARS.contains(&t.year()) { Ok(t) } else { Err(refused()) };
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| refused())?;
    if !AS_OF_YEARS.contains(&day.year()) {
        return Err(refused());
    }
    let next_midnight_shanghai = day
        .checked_add_days(chrono::Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc() - chrono::Duration::hours(8))
        .ok_or_else(refused)?;
    Ok(next_midnight_shanghai - chrono::Duration::microseconds(1))
}

#[utoipa::path(get, path = "/v1/pools/{pool}/quotas/{year}", tag = "setup",
    params(("pool" = policy::DivisionCode, Path, description = "pool code"), ("year" = crate::http::openapi::PolicyYear, Path, description = "policy year"), AsOfQuery),
    responses((status = 200, description = "pool, year, cap, committed, paid, recovered, remaining (with `as_of` and `position` when asked as of a moment)"), (status = 404, description = "not_found: the pool has no quota for the year")))]
pub async fn get_quota(
    State(state): State<AppState>,
    Path((pool, year)): Path<(String, i32)>,
    principal: Principal,
    crate::http::extract::Query(q): crate::http::extract::Query<AsOfQuery>,
) -> Result<Json<Value>, Problem> {
    require(&principal, &[Role::Admin, Role::Auditor, Role::CityFinance], &Place::pool(&pool))?;
    let mut conn = state.pool.acquire().await?;
    let not_found = || Problem::not_found(format!("pool {pool} has no quota for {year}"));
    if let Some(as_of) = &q.as_of {
        let at = as_of_time(as_of)?;
        crate::store::sequence(&mut conn).await?;
        // Only the pool's events: its stream and the year's quota tag, which every event that
        // moves the quota's money carries. Bounded by the pool's history, not the log's.
        // A code that is no pool's has no quota (as the full replay found).
        let code = policy::DivisionCode::parse(&pool).map_err(|_| not_found())?;
        let tag = events::Tag::pool_year(&code.to_string(), year);
        let stream = crate::commands::setup::pool_stream(&code);
        let replayed = crate::replay::replay_of(
            &mut conn,
            std::slice::from_ref(&tag),
            &[stream.as_str()],
            crate::replay::AsOf::Time(at),
        )
        .await
        .map_err(|e| Problem::internal(&e))?;
        let quota = replayed.models.pools.quota(&pool, year).ok_or_else(not_found)?;
        return Ok(Json(json!({
            "pool": pool, "year": year, "cap": money(quota.cap), "committed": money(quota.committed),
            "paid": money(quota.paid), "recovered": money(quota.recovered), "remaining": money(quota.remaining()),
            "as_of": at, "position": replayed.position,
        })));
    }
    let q = crate::read_models::quota(&mut conn, &pool, year).await?.ok_or_else(not_found)?;
    Ok(Json(json!({
        "pool": q.pool, "year": q.year, "cap": money(q.cap), "committed": money(q.committed),
        "paid": money(q.paid), "recovered": money(q.recovered), "remaining": money(q.remaining()),
    })))
}
