//! Public notice (公示), objections, payouts, settlement and recovery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::commands::applications::application_stream;
use crate::commands::payouts::{self as commands, Settlement};
use crate::http::extract::{require, require_role, Command, Place};
use crate::http::problem::Problem;
use crate::http::{authorise_stream, authorise_tag, money, today, AppState};
use crate::tokens::{Principal, Role};

/// `POST /v1/notices`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNotice {
    #[schema(value_type = policy::DivisionCode)]
    pub county: String,
    pub starts_on: NaiveDate,
    pub application_ids: Vec<String>,
}

/// `POST /v1/notices/{id}/objections`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObjection {
    pub application_id: String,
    #[schema(pattern = "\\S")]
    pub summary: String,
    /// The day the office received it (on paper, entered later); default: today in
    /// Asia/Shanghai. Must lie within the notice period and not in the future.
    #[serde(default)]
    pub received_on: Option<NaiveDate>,
}

/// `POST /v1/objections/{id}/resolve`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub upheld: bool,
    #[schema(pattern = "\\S")]
    pub note: String,
}

/// `POST /v1/notices/{id}/close`: no fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {}

/// `POST /v1/payouts`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayouts {
    pub application_ids: Vec<String>,
    pub paid_on: NaiveDate,
}

/// `POST /v1/payouts/{id}/settlement`: `{"status":"settled","bank_reference"}` or
/// `{"status":"failed","reason"}` (documented as that union: [`settlement_schema`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementBody {
    /// `settled` or `failed`.
    pub status: String,
    pub bank_reference: Option<String>,
    pub reason: Option<String>,
}

/// The two forms `settle` accepts, and nothing else: a settled payout with the bank's
/// reference, a failed one with the bank's reason.
impl utoipa::PartialSchema for SettlementBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        settlement_schema().into()
    }
}

impl ToSchema for SettlementBody {}

fn settlement_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    let form = |status: &str, field: &str, what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "status",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some([status])),
            )
            .required("status")
            .property(
                field,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("\\S"))
                    .description(Some(what)),
            )
            .required(field)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    OneOfBuilder::new()
        .item(form("settled", "bank_reference", "The bank's reference of the transfer"))
        .item(form("failed", "reason", "The bank's reason"))
        .into()
}

/// `POST /v1/payouts/{id}/reissue`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reissue {
    pub account: Account,
    pub paid_on: NaiveDate,
}

/// The corrected bank account of a reissue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// 开户行, e.g. "中国农业银行聊城分行".
    #[schema(pattern = "\\S")]
    pub bank: String,
    /// 8 to 32 digits (spaces between them allowed); stored encrypted, shown as `****1234`.
    #[schema(pattern = "^ *([0-9] *){8,32}$")]
    pub number: String,
}

/// `POST /v1/applications/{id}/recoveries`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecovery {
    pub amount: policy::Money,
    #[schema(pattern = "\\S")]
    pub reason: String,
    /// The day the money came back; default: today in Asia/Shanghai. Not in the future, and
    /// not in a sealed month (409 `period_sealed`).
    #[serde(default)]
    pub recovered_on: Option<NaiveDate>,
}

fn notice_stream(id: &str) -> String {
    format!("notice-{id}")
}

#[utoipa::path(post, path = "/v1/notices", tag = "payouts", request_body = NewNotice,
    responses((status = 201, description = "`{id, ends_on, lines}`"), (status = 409, description = "not_approved"),
              (status = 422, description = "no_policy_in_force: no holiday calendar covers the notice period")))]
pub async fn open_notice(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<NewNotice>,
) -> Result<Response, Problem> {
    let b = &command.body;
    require(&principal, &[Role::CountyClerk], &Place::county(None, &b.county))?;
    let mut unit = begin_unit!(state, principal, command);
    let outcome = commands::open_notice(
        unit.db(),
        &b.county,
        b.starts_on,
        &b.application_ids,
        &principal.label,
        today(),
    )
    .await
    .map(|n| {
        json!({
            "id": n.id, "county": b.county, "starts_on": b.starts_on, "ends_on": n.ends_on,
            "status": "open", "lines": n.lines.iter().map(line_json).collect::<Vec<_>>(),
        })
    });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

fn line_json(l: &events::application::NoticeLine) -> Value {
    let mut line = json!({
        "application": l.application, "name": l.name_masked, "id_number": l.id_number_masked,
        "program": l.program, "amount": money(l.amount),
    });
    if !l.payees.is_empty() {
        line["payees"] = projections::notices::payees_json(&l.payees);
    }
    line
}

/// Who may read a notice, within their scope.
pub(crate) const NOTICE_READERS: [Role; 5] =
    [Role::Admin, Role::Auditor, Role::CityFinance, Role::CountyClerk, Role::CountyReviewer];

#[utoipa::path(get, path = "/v1/notices/{id}", tag = "payouts",
    params(("id" = uuid::Uuid, Path, description = "notice id")),
    responses((status = 200, description = "The published list, names and ID numbers masked"), (status = 404, description = "not_found")))]
pub async fn get_notice(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    // A notice is published (公示) on the county's board, but the API's copy carries the
    // objections' texts: the county's staff, its pool's finance bureau, auditors and admins.
    authorise_stream(
        &state,
        &principal,
        &NOTICE_READERS,
        &notice_stream(&id),
        &format!("notice {id}"),
    )
    .await?;
    let mut conn = state.pool.acquire().await?;
    let (n, lines, objections) = crate::read_models::notice(&mut conn, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("notice {id} does not exist")))?;
    let mut body = json!({
        "id": n.notice, "county": n.county, "pool": n.pool, "starts_on": n.starts_on,
        "ends_on": n.ends_on, "working_days": n.working_days, "calendar": n.calendar,
        "status": n.status,
        "lines": lines.iter().map(|l| {
            let mut line = json!({
                "application": l.application, "name": l.name_masked,
                "id_number": l.id_number_masked, "program": l.program, "amount": money(l.amount),
            });
            // Paid per payee (a labour-dispatch refund): each part as published.
            if l.payees.as_array().is_some_and(|p| !p.is_empty()) {
                line["payees"] = l.payees.clone();
            }
            line
        }).collect::<Vec<_>>(),
    });
    if n.closed_on.is_some() {
        body["closed_on"] = json!(n.closed_on);
        body["cleared"] = json!(n.cleared);
    }
    body["objections"] = objections
        .iter()
        .map(|o| {
            let mut v = json!({
                "id": o.objection, "application": o.application, "summary": o.summary,
                "filed_on": o.filed_on, "received_on": o.received_on.unwrap_or(o.filed_on),
                "status": o.status,
            });
            if let Some(note) = &o.note {
                v["note"] = json!(note);
            }
            v
        })
        .collect();
    Ok(Json(body))
}

#[utoipa::path(get, path = "/v1/payouts/{id}", tag = "payouts",
    params(("id" = uuid::Uuid, Path, description = "payout id")),
    responses((status = 200, description = "The payout: application, amount, paid_on, status, and the bank's result"), (status = 404, description = "not_found")))]
pub async fn get_payout(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    let mut conn = state.pool.acquire().await?;
    let p = crate::read_models::payout(&mut conn, &id).await?;
    drop(conn);
    // The role first, then the place: a payout of another pool or county is refused the same
    // way whether or not it exists.
    let place = p.as_ref().map_or_else(
        || Place { pool: None, county: Some(String::new()) },
        |p| Place::county(Some(p.pool.clone()), &p.county),
    );
    require(&principal, &crate::http::routes::applications::READERS, &place)?;
    let p = p.ok_or_else(|| Problem::not_found(format!("payout {id} does not exist")))?;
    // Its batch (none for a reissue or a payout older than batches): the fold of the batch's
    // tagged events, at most a batch's payouts and their answers.
    let mut conn = state.pool.acquire().await?;
    let batch = crate::commands::batches::of_payout(&mut conn, &id).await?;
    drop(conn);
    let status = batch.as_ref().map(|b| b.status());
    Ok(Json(json!({
        "batch": batch.as_ref().map(|b| &b.batch),
        "batch_status": status.map(|s| s.as_str()),
        "batch_status_label": status.map(|s| s.label()),
        "id": p.payout, "application": p.application, "pool": p.pool, "county": p.county,
        "program": p.program, "funding": p.funding, "year": p.year, "amount": money(p.amount),
        "paid_on": p.paid_on, "issued_by": p.issued_by, "status": p.status,
        "bank_reference": p.bank_reference, "settled_on": p.settled_on,
        "failure_reason": p.failure_reason, "failed_on": p.failed_on,
        "payee": p.payee_credit_code.as_ref().map(|code| json!({
            "credit_code": code, "name": p.payee_name,
        })),
    })))
}

#[utoipa::path(post, path = "/v1/notices/{id}/objections", tag = "payouts", request_body = NewObjection,
    params(("id" = uuid::Uuid, Path, description = "notice id")),
    responses((status = 201, description = "`{id}` of the objection"), (status = 409, description = "objection_period_ended, not_on_notice, notice_already_closed")))]
pub async fn file_objection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<NewObjection>,
) -> Result<Response, Problem> {
    // Objections come from the public; the county office records them.
    let roles = [Role::CountyClerk, Role::CountyReviewer];
    authorise_stream(&state, &principal, &roles, &notice_stream(&id), &format!("notice {id}"))
        .await?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome = commands::file_objection_received(
        unit.db(),
        &id,
        &b.application_id,
        &b.summary,
        b.received_on,
        &principal.label,
        today(),
    )
    .await
    .map(|objection| {
        json!({ "id": objection, "notice": id, "application": b.application_id, "status": "open" })
    });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[utoipa::path(post, path = "/v1/objections/{id}/resolve", tag = "payouts", request_body = Resolution,
    params(("id" = uuid::Uuid, Path, description = "objection id")),
    responses((status = 200, description = "Resolved; upheld rejects the application"), (status = 409, description = "objection_already_resolved")))]
pub async fn resolve_objection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<Resolution>,
) -> Result<Response, Problem> {
    let (tag, what) = (format!("objection:{id}"), format!("objection {id}"));
    authorise_tag(&state, &principal, &[Role::CountyReviewer], &tag, &what).await?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome = commands::resolve_objection(
        unit.db(),
        &id,
        b.upheld,
        &b.note,
        &principal.label,
        today(),
    )
    .await
    .map(|status| json!({ "id": id, "upheld": b.upheld, "application_status": status.as_str() }));
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

#[utoipa::path(post, path = "/v1/notices/{id}/close", tag = "payouts", request_body = Close,
    params(("id" = uuid::Uuid, Path, description = "notice id")),
    responses((status = 200, description = "Closed: the applications cleared for payout"),
              (status = 409, description = "notice_period_not_ended, notice_already_closed")))]
pub async fn close_notice(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<Close>,
) -> Result<Response, Problem> {
    let roles = [Role::CountyClerk, Role::CountyReviewer];
    authorise_stream(&state, &principal, &roles, &notice_stream(&id), &format!("notice {id}"))
        .await?;
    let mut unit = begin_unit!(state, principal, command);
    let outcome = commands::close_notice(unit.db(), &id, &principal.label, today())
        .await
        .map(|cleared| json!({ "id": id, "status": "closed", "cleared": cleared }));
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

#[utoipa::path(post, path = "/v1/payouts", tag = "payouts", request_body = NewPayouts,
    responses((status = 201, description = "One payout per application; per payee line where the decision splits it (labour dispatch)"),
              (status = 409, description = "not_cleared, already_paid, period_sealed")))]
pub async fn issue_payouts(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<NewPayouts>,
) -> Result<Response, Problem> {
    let b = &command.body;
    // Every application must belong to the finance token's pool.
    require_role(&principal, &[Role::CityFinance])?;
    for id in &b.application_ids {
        let (stream, what) = (application_stream(id), format!("application {id}"));
        authorise_stream(&state, &principal, &[Role::CityFinance], &stream, &what).await?;
    }
    let mut unit = begin_unit!(state, principal, command);
    let outcome = commands::issue_payouts_to(
        unit.db(),
        &b.application_ids,
        b.paid_on,
        &principal.label,
        today(),
    )
    .await
    .map(|payouts| {
        let items: Vec<Value> = payouts
            .iter()
            .map(|p| {
                let payee = match &p.payee {
                    commands::Payee::Unit { credit_code, name } => {
                        json!({ "credit_code": credit_code, "name": name })
                    }
                    commands::Payee::Person { id_number_masked, name_masked } => {
                        json!({ "id_number": id_number_masked, "name": name_masked })
                    }
                };
                json!({ "id": p.id, "application": p.application, "payee": payee,
                                "amount": money(p.amount), "paid_on": b.paid_on, "status": "issued",
                                "batch": p.batch })
            })
            .collect();
        let mut batches: Vec<&str> = payouts.iter().map(|p| p.batch.as_str()).collect();
        batches.sort_unstable();
        batches.dedup();
        json!({ "payouts": items, "batches": batches })
    });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

async fn authorise_payout(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<(), Problem> {
    let (tag, what) = (format!("payout:{id}"), format!("payout {id}"));
    authorise_tag(state, principal, &[Role::CityFinance], &tag, &what).await.map(|_| ())
}

#[utoipa::path(post, path = "/v1/payouts/{id}/settlement", tag = "payouts", request_body = SettlementBody,
    params(("id" = uuid::Uuid, Path, description = "payout id")),
    responses((status = 200, description = "Recorded"), (status = 409, description = "payout_already_settled, period_sealed")))]
pub async fn settle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<SettlementBody>,
) -> Result<Response, Problem> {
    let b = &command.body;
    let settlement = match (b.status.as_str(), &b.bank_reference, &b.reason) {
        ("settled", Some(r), None) => Settlement::Settled { bank_reference: r.clone() },
        ("settled", None, _) => {
            return Err(Problem::invalid(
                "bank_reference",
                "a settled payout needs the bank's reference",
            ))
        }
        ("failed", None, Some(r)) => Settlement::Failed { reason: r.clone() },
        ("failed", _, None) => {
            return Err(Problem::invalid("reason", "a failed payout needs the bank's reason"))
        }
        ("settled", _, Some(_)) => {
            return Err(Problem::invalid("reason", "only a failed payout has a reason"))
        }
        ("failed", Some(_), _) => {
            return Err(Problem::invalid(
                "bank_reference",
                "only a settled payout has a bank reference",
            ))
        }
        (other, _, _) => {
            return Err(Problem::invalid(
                "status",
                format!("`{other}` is not a settlement; use settled or failed"),
            ))
        }
    };
    authorise_payout(&state, &principal, &id).await?;
    let mut unit = begin_unit!(state, principal, command);
    let outcome = commands::settle(unit.db(), &id, &settlement, &principal.label, today())
        .await
        .map(|()| json!({ "id": id, "status": b.status }));
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

#[utoipa::path(post, path = "/v1/payouts/{id}/reissue", tag = "payouts", request_body = Reissue,
    params(("id" = uuid::Uuid, Path, description = "the failed payout's id")),
    responses((status = 201, description = "A new payout of the same amount to the corrected account; the quota is unchanged"),
              (status = 409, description = "payout_not_failed, period_sealed")))]
pub async fn reissue(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<Reissue>,
) -> Result<Response, Problem> {
    authorise_payout(&state, &principal, &id).await?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let account =
        commands::BankAccount { bank: b.account.bank.clone(), number: b.account.number.clone() };
    let outcome = commands::reissue_payout(
        unit.db(),
        &state.keys,
        &id,
        &account,
        b.paid_on,
        &principal.label,
        today(),
    )
    .await
    .map(|payout| {
        json!({
            "id": payout, "reissue_of": id, "paid_on": b.paid_on, "status": "issued",
            "account": { "bank": account.bank.trim(), "number": account.masked() },
        })
    });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

#[utoipa::path(post, path = "/v1/applications/{id}/recoveries", tag = "payouts", request_body = NewRecovery,
    params(("id" = uuid::Uuid, Path, description = "application id")),
    responses((status = 201, description = "Recorded; recovered quota money is freed"), (status = 409, description = "not_recoverable, period_sealed")))]
pub async fn record_recovery(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<NewRecovery>,
) -> Result<Response, Problem> {
    let (stream, what) = (application_stream(&id), format!("application {id}"));
    authorise_stream(&state, &principal, &[Role::CityFinance], &stream, &what).await?;
    let mut unit = begin_unit!(state, principal, command);
    let b = &command.body;
    let outcome =
        commands::record_recovery_dated(
            unit.db(),
            &id,
            b.amount,
            &b.reason,
            b.recovered_on.unwrap_or_else(today),
            &principal.label,
            today(),
        )
            .await
            .map(|recovery| {
                json!({ "id": recovery, "application": id, "amount": b.amount.to_string(), "reason": b.reason.trim() })
            });
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}
