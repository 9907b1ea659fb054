//! The unit of work of one POST: one transaction holding the Idempotency-Key claim, the
//! command's events (as savepoints, so its internal retries stay inside) and the response.
//! A retry can therefore never record twice, and a copy arriving while the first is running
//! waits on the key's row and replays the first's response.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use super::extract::Command;
use super::problem::Problem;
use super::AppState;
use crate::commands::{Db, Issuer};
use crate::tokens::Principal;

pub const REPLAYED: &str = "idempotent-replayed";

/// How long an Idempotency-Key is remembered (API.md: at least 30 days). Older keys are
/// deleted by `fundledger idempotency prune`, through the database function
/// `fundledger_prune_idempotency`, which refuses anything under 30 days; a key seen again after
/// that is a new request.
pub const IDEMPOTENCY_RETENTION_DAYS: u32 = 35;

/// A started unit of work, or the stored answer to a request already made.
#[derive(Debug)]
pub enum Begun {
    Fresh(Unit),
    Replay(Response),
}

#[derive(Debug)]
pub struct Unit {
    tx: Transaction<'static, Postgres>,
    database: String,
    /// The (token, Idempotency-Key) this request holds.
    claim: Option<(uuid::Uuid, String)>,
    issuer: Issuer,
}

fn stored_response(status: i16, body: serde_json::Value, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    }
    if replayed {
        response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

impl Unit {
    /// Begins the transaction and, with an Idempotency-Key, claims it for this request.
    pub async fn begin<T>(
        state: &AppState,
        principal: &Principal,
        command: &Command<T>,
    ) -> Result<Begun, Problem> {
        if command.key_required && command.idempotency_key.is_none() {
            return Err(Problem::idempotency_key_required());
        }
        let mut tx = state.pool.begin().await?;
        let mut claim = None;
        if let Some(key) = &command.idempotency_key {
            // Waits while another transaction holds the same key; then either inserts (that
            // one rolled back) or finds its committed row.
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (token_id, key, fingerprint, status, response) \
                 VALUES ($1, $2, $3, 0, 'null') ON CONFLICT DO NOTHING",
            )
            .bind(principal.token_id)
            .bind(key)
            .bind(&command.fingerprint)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let (fingerprint, status, body): (String, i16, serde_json::Value) =
                    sqlx::query_as(
                        "SELECT fingerprint, status, response FROM idempotency_keys WHERE token_id = $1 AND key = $2",
                    )
                    .bind(principal.token_id)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.rollback().await?;
                if fingerprint != command.fingerprint {
                    return Err(Problem::new(
                        StatusCode::CONFLICT,
                        "idempotency_conflict",
                        format!(
                            "Idempotency-Key `{key}` was used for a different request; use a new key for a new request"
                        ),
                    ));
                }
                return Ok(Begun::Replay(stored_response(status, body, true)));
            }
            claim = Some((principal.token_id, key.clone()));
        }
        let issuer =
            Issuer { token_id: principal.token_id.to_string(), person: principal.person.clone() };
        Ok(Begun::Fresh(Unit { tx, database: state.database.to_string(), claim, issuer }))
    }

    /// Where the command runs: savepoints in this transaction.
    pub fn db(&mut self) -> Db<'_> {
        Db::within(&mut self.tx, &self.database).issued_by(self.issuer.clone())
    }

    /// Records the response with the key and commits. Refusals (4xx) are kept like successes,
    /// so a retry gets the same answer; a server error rolls everything back, so a retry runs
    /// again.
    pub async fn finish<T: Serialize, E: Into<Problem>>(
        mut self,
        status: StatusCode,
        outcome: Result<T, E>,
    ) -> Response {
        let (status, body) = match outcome {
            Ok(body) => (status, serde_json::to_value(body).expect("responses serialise")),
            Err(e) => {
                let problem: Problem = e.into();
                if problem.status().is_server_error() {
                    drop(self.tx);
                    return problem.into_response();
                }
                (problem.status(), serde_json::to_value(&problem).expect("problems serialise"))
            }
        };
        let stored = async {
            if let Some((token, key)) = &self.claim {
                sqlx::query(
                    "UPDATE idempotency_keys SET status = $3, response = $4 WHERE token_id = $1 AND key = $2",
                )
                .bind(token)
                .bind(key)
                .bind(status.as_u16() as i16)
                .bind(&body)
                .execute(&mut *self.tx)
                .await?;
            }
            self.tx.commit().await
        };
        match stored.await {
            Ok(()) => stored_response(status.as_u16() as i16, body, false),
            Err(e) => {
                // The COMMIT may have reached the database and succeeded before the error
                // (a connection lost while the answer travelled back): nobody here can know.
                tracing::error!(error = %e, "the unit of work did not commit cleanly");
                Problem::outcome_unknown().into_response()
            }
        }
    }
}
