//! The HTTP API (axum). Only liveness so far; the routes of API.md follow.

use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;

#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
}

pub fn router(state: AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(state)
}

/// Liveness: the process answers. Database reachability is `/readyz`'s job.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
