//! The unit of work of one POST: one transaction holding the command's events, the
//! Idempotency-Key and the response. A retry can therefore never record twice.
//!
//! In a transaction of its own, the command runs first, directly in the transaction (no
//! savepoints: [`Db::unit`]), and the key is claimed with the response in one statement at the
//! end: a copy running at the same time waits there for the first to commit, then finds its
//! key, throws its own work away and replays the first's response (a copy that arrives later
//! does the same; its work is never recorded). In a group the same happens inside the
//! member's savepoint ([`Db::in_group`]), and the commit is the group's.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::{PgConnection, Postgres, Transaction};

use super::extract::Command;
use super::problem::Problem;
use super::AppState;
use crate::commands::group::{GroupError, Seat};
use crate::commands::{Db, Issuer};
use crate::tokens::Principal;

pub const REPLAYED: &str = "idempotent-replayed";

/// How long an Idempotency-Key is remembered (API.md: at least 30 days). Older keys are
/// deleted by `fundledger idempotency prune`, through the database function
/// `fundledger_prune_idempotency`, which refuses anything under 30 days; a key seen again after
/// that is a new request.
pub const IDEMPOTENCY_RETENTION_DAYS: u32 = 35;

/// A request extension: the request runs in the held group of this key (`POST /v1/batch`
/// holds one for its items), whatever group its route would choose.
#[derive(Debug, Clone)]
pub struct InGroup(pub String);

#[derive(Debug)]
pub struct Unit {
    work: Work,
    database: String,
    /// The Idempotency-Key to claim with the response at the end: (token, key, fingerprint).
    claim: Option<(uuid::Uuid, String, String)>,
    issuer: Issuer,
    /// A command has run in the unit's transaction (the next runs as savepoints).
    used: bool,
}

/// Where a unit's work is recorded.
#[derive(Debug)]
enum Work {
    /// Its own transaction.
    Own(Transaction<'static, Postgres>),
    /// A seat in a group of commands sharing one commit ([`crate::commands::group`]).
    Seat(Seat),
}

/// A key's claim that failed. A deadlock there is two transactions claiming keys the other
/// holds, or waiting for locks the other holds (two groups claiming the same keys in
/// opposite orders; a group holding a key while it waits for a lock a unit holds): nothing is
/// recorded, and the request may be retried.
pub(super) fn claim_failed(e: sqlx::Error) -> Problem {
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("40P01") => Problem::from(crate::store::AppendError::Contended),
        _ => Problem::from(e),
    }
}

/// The response stored under a key another request holds: replayed if it was the same
/// request, `idempotency_conflict` otherwise.
async fn stored(
    conn: &mut PgConnection,
    token: uuid::Uuid,
    key: &str,
    request_fingerprint: &str,
) -> Result<Response, Problem> {
    let (fingerprint, status, body): (String, i16, serde_json::Value) = sqlx::query_as(
        "SELECT fingerprint, status, response FROM idempotency_keys WHERE token_id = $1 AND key = $2",
    )
    .bind(token)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    answer_stored(key, request_fingerprint, &fingerprint, status, body)
}

/// The answer to a request whose key is stored with `fingerprint`, `status` and `body`: the
/// stored response replayed if it was the same request, `idempotency_conflict` otherwise.
pub(super) fn answer_stored(
    key: &str,
    request_fingerprint: &str,
    fingerprint: &str,
    status: i16,
    body: serde_json::Value,
) -> Result<Response, Problem> {
    if fingerprint != request_fingerprint {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            format!(
                "Idempotency-Key `{key}` was used for a different request; use a new key for a new request"
            ),
        ));
    }
    // A key is written with its response, in one statement: a row without a response is
    // never seen (rows of older versions, which claimed first, were committed with theirs).
    if status == 0 {
        return Err(Problem::internal(&format!("Idempotency-Key `{key}` has no response")));
    }
    Ok(stored_response(status, body, true))
}

pub(super) fn stored_response(status: i16, body: serde_json::Value, replayed: bool) -> Response {
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
    ) -> Result<Unit, Problem> {
        if let Some(group) = &command.group {
            return Unit::begin_grouped(state, principal, command, group).await;
        }
        if command.key_required && command.idempotency_key.is_none() {
            return Err(Problem::idempotency_key_required());
        }
        let tx = state.pool.begin().await?;
        Ok(Unit::new(state, principal, Work::Own(tx), command))
    }

    /// [`Unit::begin`] in the group of `group_key` ([`crate::commands::group`]): the request
    /// shares its commit with the concurrent requests of the same key. Run it in a task of its
    /// own (`tokio::spawn`), so a closed connection cannot cancel it half way and roll back
    /// the others' work with its own.
    pub async fn begin_grouped<T>(
        state: &AppState,
        principal: &Principal,
        command: &Command<T>,
        group_key: &str,
    ) -> Result<Unit, Problem> {
        if command.key_required && command.idempotency_key.is_none() {
            return Err(Problem::idempotency_key_required());
        }
        // A held group (a batch's) comes before the route's choice.
        let group_key = command.group.as_deref().unwrap_or(group_key);
        let seat = state.groups.seat(group_key).await.map_err(group_problem)?;
        Ok(Unit::new(state, principal, Work::Seat(seat), command))
    }

    fn new<T>(state: &AppState, principal: &Principal, work: Work, command: &Command<T>) -> Self {
        let issuer =
            Issuer { token_id: principal.token_id.to_string(), person: principal.person.clone() };
        let claim = command
            .idempotency_key
            .clone()
            .map(|key| (principal.token_id, key, command.fingerprint.clone()));
        Unit { work, database: state.database.to_string(), claim, issuer, used: false }
    }

    /// Where the command runs: the first directly in this unit's transaction (or its member's
    /// savepoint), any later one as savepoints within it.
    pub fn db(&mut self) -> Db<'_> {
        let first = !std::mem::replace(&mut self.used, true);
        let db = match &mut self.work {
            Work::Own(tx) => match first {
                true => Db::unit(tx, &self.database),
                false => Db::within(tx, &self.database),
            },
            Work::Seat(seat) => {
                let mut db = Db::in_group(seat, &self.database);
                if !first {
                    db.used();
                }
                db
            }
        };
        db.issued_by(self.issuer.clone())
    }

    fn conn(&mut self) -> &mut PgConnection {
        match &mut self.work {
            Work::Own(tx) => tx,
            Work::Seat(seat) => seat.conn(),
        }
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
                    if let Work::Seat(seat) = self.work {
                        if let Err(e) = seat.discard().await {
                            tracing::warn!(error = %e, "a group member's savepoint was not undone");
                        }
                    }
                    // (Its own transaction rolls back as it is dropped.)
                    return problem.into_response();
                }
                (problem.status(), serde_json::to_value(&problem).expect("problems serialise"))
            }
        };
        if let Some((token, key, fingerprint)) = self.claim.clone() {
            match self.claim_with_response(token, &key, &fingerprint, status, &body).await {
                Ok(true) => {}
                Ok(false) => return self.replay_stored(token, &key, &fingerprint).await,
                Err(p) => {
                    // A member's failed statement is undone with its savepoint; a
                    // transaction of its own rolls back as it is dropped.
                    if let Work::Seat(seat) = self.work {
                        let _ = seat.discard().await;
                    }
                    return p.into_response();
                }
            }
        }
        let committed = match self.work {
            Work::Own(tx) => tx.commit().await.map_err(|e| {
                // The COMMIT may have reached the database and succeeded before the error
                // (a connection lost while the answer travelled back): nobody here can know.
                tracing::error!(error = %e, "the unit of work did not commit cleanly");
                Problem::outcome_unknown()
            }),
            Work::Seat(seat) => seat.keep().await.map_err(group_problem),
        };
        match committed {
            Ok(()) => stored_response(status.as_u16() as i16, body, false),
            Err(p) => p.into_response(),
        }
    }
}

impl Unit {
    /// Claims the key with the response: `false` when another request holds it (one still
    /// running in another transaction is waited for; an earlier member of the same group is
    /// found at once).
    async fn claim_with_response(
        &mut self,
        token: uuid::Uuid,
        key: &str,
        fingerprint: &str,
        status: StatusCode,
        body: &serde_json::Value,
    ) -> Result<bool, Problem> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (token_id, key, fingerprint, status, response) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(token)
        .bind(key)
        .bind(fingerprint)
        .bind(status.as_u16() as i16)
        .bind(body)
        .execute(self.conn())
        .await
        .map_err(claim_failed)?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The key was someone else's: this unit's work is thrown away, and the answer is the
    /// stored one (or `idempotency_conflict` for a different request under the same key).
    async fn replay_stored(mut self, token: uuid::Uuid, key: &str, fingerprint: &str) -> Response {
        // Read in this transaction (its next statement sees what the holder committed, or
        // what an earlier member of the group wrote), then undo everything this unit did. A
        // member answers once the group has committed what it replays.
        let answer = stored(self.conn(), token, key, fingerprint).await;
        let undone = match self.work {
            Work::Own(tx) => tx.rollback().await.map_err(Problem::from),
            Work::Seat(seat) => seat.discard().await.map_err(group_problem),
        };
        if let Err(p) = undone {
            return p.into_response();
        }
        answer.unwrap_or_else(|p| p.into_response())
    }
}

/// What a request answers when its commit (its own, or its group's) did not end cleanly.
pub(crate) fn group_problem(e: GroupError) -> Problem {
    match e {
        GroupError::RolledBack => Problem::from(crate::store::AppendError::Contended),
        // The COMMIT may have reached the database and succeeded before the error (a
        // connection lost while the answer travelled back): nobody here can know.
        GroupError::CommitUnknown => Problem::outcome_unknown(),
        GroupError::Database(e) => Problem::from(e),
    }
}
