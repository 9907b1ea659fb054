//! The finance bureau's desk: the bank's result file, sealed months.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::commands::periods::{self, Month};
use crate::commands::settlements;
use crate::http::extract::{require, require_role, Command, Place, Query, IDEMPOTENCY_KEY};
use crate::http::problem::Problem;
use crate::http::{money, today, AppState};
use crate::tokens::{Principal, Role, Scope};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Days after which an issued payout with no bank line is reported `unanswered`
    /// (default 10).
    pub days: Option<u32>,
}

/// The caller's pool: a finance bureau acts for one.
fn pool_of(principal: &Principal) -> Result<String, Problem> {
    require_role(principal, &[Role::CityFinance])?;
    match &principal.scope {
        Scope::Pool(p) => Ok(p.clone()),
        _ => Err(crate::http::extract::out_of_scope(principal)),
    }
}

#[utoipa::path(post, path = "/v1/settlements/import", tag = "payouts", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The bank's result file, UTF-8 or GBK, with its header"),
    responses((status = 200, description = "The reconciliation: matched, amount_mismatch, unknown_payout, duplicate_line, already_recorded (each with its line), invalid, refused, unanswered"),
              (status = 422, description = "validation_failed: the header or the encoding")))]
pub async fn import_settlements(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let pool = pool_of(&principal)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if !matches!(content_type.as_deref(), Some("text/csv" | "application/csv")) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the bank's file as `Content-Type: text/csv` (UTF-8 or GBK)",
        ));
    }
    let idempotency_key =
        headers.get(IDEMPOTENCY_KEY).map(crate::http::extract::idempotency_key).transpose()?;
    let days = q.days.unwrap_or(settlements::UNANSWERED_AFTER_DAYS_DEFAULT);
    // The same file with the same key is the same request, whatever its encoding.
    let fingerprint = hex::encode(Sha256::digest(
        [
            format!("POST /v1/settlements/import?days={days}\n").as_bytes(),
            &Sha256::digest(&body)[..],
        ]
        .concat(),
    ));
    let command =
        Command { body: (), idempotency_key, key_required: true, fingerprint, group: None };
    let mut unit = begin_unit!(state, principal, command);
    let mut db = unit.db();
    let outcome =
        settlements::import(&mut db, &body, Some(&pool), days, &principal.label, today()).await;
    drop(db);
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

/// `POST /v1/periods/{pool}/{month}/seal`: no fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seal {}

#[utoipa::path(post, path = "/v1/periods/{pool}/{month}/seal", tag = "payouts", request_body = Seal,
    params(("pool" = policy::DivisionCode, Path, description = "pool code"), ("month" = crate::http::openapi::MonthText, Path, description = "YYYY-MM")),
    responses((status = 201, description = "The seal: the month's totals, the log position it covers, the signature (or `signed: false`)"),
              (status = 409, description = "period_already_sealed, period_not_ended"),
              (status = 422, description = "pool_not_found")))]
pub async fn seal_period(
    State(state): State<AppState>,
    Path((pool, month)): Path<(String, String)>,
    principal: Principal,
    command: Command<Seal>,
) -> Result<Response, Problem> {
    require(&principal, &[Role::CityFinance], &Place::pool(&pool))?;
    let code = crate::http::extract::division("pool", &pool)?;
    let month = Month::parse(&month)
        .ok_or_else(|| Problem::invalid("month", "a month is YYYY-MM, e.g. 2024-11"))?;
    let mut unit = begin_unit!(state, principal, command);
    let signer = state.seal_signer.clone();
    let outcome =
        periods::seal(unit.db(), &code, month, signer.as_deref(), &principal.label, today())
            .await
            .map(|s| {
                let t = &s.totals;
                let mut body = json!({
                    "pool": s.pool, "month": s.month,
                    "totals": {"payouts": t.payouts, "paid": money(t.paid), "failed": money(t.failed),
                               "recovered": money(t.recovered), "net": money(t.net)},
                    "rows": s.rows.iter().map(|r| json!({
                        "county": r.county, "program": r.program, "funding": r.funding,
                        "payouts": r.totals.payouts, "paid": money(r.totals.paid),
                        "failed": money(r.totals.failed), "recovered": money(r.totals.recovered),
                        "net": money(r.totals.net),
                    })).collect::<Vec<_>>(),
                    "log_position": s.log_position, "log_hash": s.log_hash,
                    "sealed_at": s.sealed_at, "sealed_on": s.sealed_on,
                    "signed": s.signature.is_some(),
                    "public_key": s.public_key, "signature": s.signature,
                    "message": s.message(),
                });
                if s.signature.is_none() {
                    body["unsigned_because"] = json!(
                        "this server holds no checkpoint key (serve signs only with --checkpoint-every > 0 and checkpoint.key); the seal is recorded unsigned, and the next signed checkpoint covers its position"
                    );
                }
                body
            });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FlagsQuery {
    pub pool: policy::DivisionCode,
}

#[utoipa::path(get, path = "/v1/flags", tag = "reports", params(FlagsQuery),
    responses((status = 200, description = "`{pool, flags: [{kind, detail, events: [{event_id, position, type, application, payout}]}]}`: shared_account, several_counties, account_changed_repeatedly"),
              ))]
pub async fn flags(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<FlagsQuery>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let pool = q.pool.to_string();
    require(&principal, &[Role::CityFinance, Role::Auditor], &Place::pool(&pool))?;
    let mut conn = state.pool.acquire().await?;
    let flags = crate::flags::flags(&mut conn, &pool).await?;
    Ok(axum::Json(json!({ "pool": pool, "flags": flags })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TrialBalanceQuery {
    pub pool: policy::DivisionCode,
    /// `YYYY-MM`.
    #[param(value_type = crate::http::openapi::MonthText)]
    pub month: String,
}

#[utoipa::path(get, path = "/v1/reports/trial-balance", tag = "reports", params(TrialBalanceQuery),
    responses((status = 200, description = "试算平衡表 of the double-entry view: `{pool, month, lines: [{account, label, debit, credit, balance}], total_debit, total_credit, balanced}` (every account, zeros included)"),
              ))]
pub async fn trial_balance(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<TrialBalanceQuery>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let pool = q.pool.to_string();
    require(&principal, &[Role::CityFinance, Role::Auditor], &Place::pool(&pool))?;
    let month = Month::parse(&q.month)
        .ok_or_else(|| Problem::invalid("month", "a month is YYYY-MM, e.g. 2024-11"))?
        .to_string();
    let mut conn = state.pool.acquire().await?;
    let rows = crate::read_models::entries_of_month(&mut conn, &pool, &month).await?;
    drop(conn);
    let tb = projections::entries::TrialBalance::of(rows.iter().map(|(a, s)| (a.as_str(), s)));
    let lines: Vec<serde_json::Value> = tb
        .lines
        .iter()
        .map(|l| {
            json!({"account": l.account, "label": l.label, "debit": money(l.debit),
                   "credit": money(l.credit), "balance": money(l.balance)})
        })
        .collect();
    Ok(axum::Json(json!({
        "pool": pool, "month": month, "lines": lines,
        "total_debit": money(tb.total_debit), "total_credit": money(tb.total_credit),
        "balanced": tb.balanced,
    })))
}
