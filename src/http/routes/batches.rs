//! Payout batches (支付批次): issued by `POST /v1/payouts`, sent to the bank, answered,
//! reconciled (`commands::batches`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::NaiveDate;
use projections::batches::{Answer, Batch};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::commands::batches;
use crate::http::extract::Command;
use crate::http::problem::Problem;
use crate::http::{authorise_tag, money, today, AppState};
use crate::tokens::{Principal, Role};

/// `POST /v1/payouts/batches/{id}/sent`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sent {
    /// The day the payment order went to the bank; default: today (Asia/Shanghai).
    #[serde(default)]
    pub sent_on: Option<NaiveDate>,
}

/// `POST /v1/payouts/batches/{id}/reconciled`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reconciled {}

/// A batch as the routes answer it.
pub fn batch_json(b: &Batch) -> Value {
    let (settled, settled_amount) = b.answered(Answer::Settled);
    let (failed, failed_amount) = b.answered(Answer::Failed);
    let status = b.status();
    json!({
        "id": b.batch, "pool": b.pool, "status": status.as_str(), "status_label": status.label(),
        "amount": money(b.amount), "issued_on": b.issued_on, "issued_by": b.issued_by,
        "sent_on": b.sent_on, "reconciled_on": b.reconciled.as_ref().map(|r| r.reconciled_on),
        "payouts": b.payouts.len(), "pending": b.pending(),
        "settled": settled, "settled_amount": money(settled_amount),
        "failed": failed, "failed_amount": money(failed_amount),
        "payout_ids": b.payouts.keys().collect::<Vec<_>>(),
    })
}

async fn authorise_batch(
    state: &AppState,
    principal: &Principal,
    roles: &[Role],
    id: &str,
) -> Result<(), Problem> {
    let (tag, what) = (format!("batch:{id}"), format!("payout batch {id}"));
    authorise_tag(state, principal, roles, &tag, &what).await.map(|_| ())
}

#[utoipa::path(get, path = "/v1/payouts/batches/{id}", tag = "payouts",
    params(("id" = uuid::Uuid, Path, description = "batch id")),
    responses((status = 200, description = "The batch: `status` issued → sent → answered → reconciled (`status_label` 已生成, 已送银行, 已回盘, 已对账), its amount, dates, and the bank's answers so far"),
              (status = 404, description = "not_found")))]
pub async fn get_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    let roles = [Role::CityFinance, Role::Auditor, Role::Admin];
    authorise_batch(&state, &principal, &roles, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let b = batches::load(&mut conn, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("payout batch {id} does not exist")))?;
    Ok(Json(batch_json(&b)))
}

#[utoipa::path(post, path = "/v1/payouts/batches/{id}/sent", tag = "payouts", request_body = Sent,
    params(("id" = uuid::Uuid, Path, description = "batch id")),
    responses((status = 200, description = "The batch, now `sent`"),
              (status = 409, description = "batch_already_sent, batch_already_reconciled")))]
pub async fn mark_sent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<Sent>,
) -> Result<Response, Problem> {
    authorise_batch(&state, &principal, &[Role::CityFinance], &id).await?;
    let sent_on = command.body.sent_on.unwrap_or_else(today);
    let mut unit = begin_unit!(state, principal, command);
    let outcome = batches::mark_sent(unit.db(), &id, sent_on, &principal.label, today())
        .await
        .map(|b| batch_json(&b));
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

#[utoipa::path(post, path = "/v1/payouts/batches/{id}/reconciled", tag = "payouts", request_body = Reconciled,
    params(("id" = uuid::Uuid, Path, description = "batch id")),
    responses((status = 200, description = "`{batch, settled, settled_amount, failed, failed_amount, reconciled_on}`"),
              (status = 409, description = "batch_not_sent, batch_not_answered, batch_already_reconciled")))]
pub async fn reconcile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<Reconciled>,
) -> Result<Response, Problem> {
    authorise_batch(&state, &principal, &[Role::CityFinance], &id).await?;
    let mut unit = begin_unit!(state, principal, command);
    let outcome = batches::reconcile(unit.db(), &id, &principal.label, today()).await.map(|r| {
        json!({"batch": r.batch, "status": "reconciled", "settled": r.settled,
               "settled_amount": money(r.settled_amount), "failed": r.failed,
               "failed_amount": money(r.failed_amount), "reconciled_on": r.reconciled_on})
    });
    Ok(unit.finish(StatusCode::OK, outcome).await)
}
