//! Liveness, readiness and the machine-readable contract.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::http::problem::Problem;
use crate::http::AppState;

#[utoipa::path(get, path = "/healthz", tag = "ops", security(()),
    responses((status = 200, description = "The process answers")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", security(()),
    responses((status = 200, description = "The database answers and every migration is applied"),
              (status = 503, description = "migrations_pending")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    let mut conn = state.pool.acquire().await?;
    let applied: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    let expected: Vec<i64> = crate::postgres::MIGRATOR.iter().map(|m| m.version).collect();
    let missing: Vec<i64> =
        expected.iter().copied().filter(|v| !applied.iter().any(|(a,)| a == v)).collect();
    if !missing.is_empty() {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations_pending",
            format!(
                "migrations {missing:?} are not applied; `fundledger serve` applies them at start"
            ),
        );
        p.retry_after = Some(5);
        return Err(p);
    }
    Ok(Json(json!({ "status": "ready", "migrations": expected.len() })))
}

#[utoipa::path(get, path = "/openapi.json", tag = "ops", security(()),
    responses((status = 200, description = "This document")))]
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(state.openapi.as_ref().clone())
}
