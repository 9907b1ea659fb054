//! The unit of work of requests executed together ([`crate::commands::together`]): one
//! transaction holding a batch's events, and each request's Idempotency-Key with its response.
//! One pool's reviews are executed together (their key: `review:<pool>`), and so are
//! submissions of persons' applications ([`SUBMISSION_LANES`] queues).
//!
//! As for a request on its own ([`super::unit`]), a key is claimed with its response at the
//! end, in the transaction that records the work: here the batch's keys in one statement. A key
//! stored already (a request sent again), or claimed by a concurrent transaction meanwhile, is
//! found at the claim: the whole batch is rolled back and run again, this time reading the
//! stored keys first and answering their requests from them (replayed, or
//! `idempotency_conflict`) without running them. Two requests of one batch with the same key
//! run in rounds, one after the other: the second finds the first's answer.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::Value;

use super::problem::Problem;
use super::unit::{answer_stored, claim_failed, stored_response};
use super::AppState;
use crate::commands::applications::{
    review_together, submit_together, ReviewRequest, SubmitRequest,
};
use crate::commands::{Db, COMMAND_ATTEMPTS_MAX};

/// Queues of submissions executed together: a person's submissions always in the same one.
/// Two leaders at a time keep PostgreSQL's work on both cores of the development machine where
/// one would leave one idle (one lane and four measured no better in `benches/commands.rs`).
pub const SUBMISSION_LANES: u64 = 2;

/// An Idempotency-Key as a request claims it: (token, key, fingerprint).
pub type Claim = (uuid::Uuid, String, String);

/// One request as a batch takes it.
#[derive(Debug)]
pub struct Item {
    pub request: Request,
    pub claim: Option<Claim>,
}

/// The commands executed together.
#[derive(Debug, Clone)]
pub enum Request {
    Review(ReviewRequest),
    /// A person's application, with the program and county its answer repeats.
    Submit {
        request: SubmitRequest,
        program: String,
        county: String,
    },
}

/// Answers a batch of requests, each with its response, in order.
pub async fn execute(state: &AppState, items: Vec<Item>, today: NaiveDate) -> Vec<Response> {
    let mut answers: Vec<Option<Response>> = items.iter().map(|_| None).collect();
    let mut left: Vec<usize> = (0..items.len()).collect();
    while !left.is_empty() {
        // This round: each key's first request still unanswered.
        let mut keys = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = left.into_iter().partition(|&i| {
            items[i].claim.as_ref().is_none_or(|(token, key, _)| keys.insert((*token, key)))
        });
        let round_items: Vec<&Item> = round.iter().map(|&i| &items[i]).collect();
        for (i, answer) in round.iter().zip(once(state, &round_items, today).await) {
            answers[*i] = Some(answer);
        }
        left = later;
    }
    answers.into_iter().map(|a| a.expect("every request answered")).collect()
}

/// One round of [`execute`]: no two requests with the same key.
async fn once(state: &AppState, items: &[&Item], today: NaiveDate) -> Vec<Response> {
    let all = |p: Problem| items.iter().map(|_| p.clone().into_response()).collect();
    // The first attempt claims the keys at the end only: a request seen before is rare, and
    // reading the stored keys first would cost every batch a round trip.
    let mut read_stored = false;
    for _ in 0..COMMAND_ATTEMPTS_MAX {
        match attempt(state, items, today, read_stored).await {
            Ok(Some(answers)) => return answers,
            // A key claimed already, or meanwhile by another transaction: run again, answering
            // those requests from their stored keys.
            Ok(None) => read_stored = true,
            Err(p) => return all(p),
        }
    }
    all(Problem::from(crate::store::AppendError::Contended))
}

/// One transaction: the answers, or `None` when a key was found claimed at the end (nothing
/// recorded). With `read_stored`, the requests whose keys are stored are answered from them
/// first and not run.
async fn attempt(
    state: &AppState,
    items: &[&Item],
    today: NaiveDate,
    read_stored: bool,
) -> Result<Option<Vec<Response>>, Problem> {
    let mut tx = state.pool.begin().await?;
    let mut answers: Vec<Option<Response>> = match read_stored {
        true => stored(&mut tx, items).await?,
        false => items.iter().map(|_| None).collect(),
    };
    let running: Vec<usize> = (0..items.len()).filter(|&i| answers[i].is_none()).collect();
    let requests: Vec<&Request> = running.iter().map(|&i| &items[i].request).collect();
    let outcomes = run(state, &mut tx, &requests, today).await?;
    let mut claims = Vec::new();
    let mut responses = Vec::new();
    for (&i, outcome) in running.iter().zip(outcomes) {
        let (status, body) = match outcome {
            Ok(answer) => answer,
            Err(problem) => {
                if problem.status().is_server_error() {
                    // Not kept under the key: a retry runs again.
                    answers[i] = Some(problem.into_response());
                    continue;
                }
                (problem.status(), serde_json::to_value(&problem).expect("problems serialise"))
            }
        };
        if let Some(claim) = &items[i].claim {
            claims.push((claim, status.as_u16() as i16, body.clone()));
        }
        responses.push((i, status.as_u16() as i16, body));
    }
    if !claim_all(&mut tx, &claims).await? {
        return Ok(None);
    }
    tx.commit().await.map_err(|e| {
        // The COMMIT may have reached the database and succeeded before the error (a
        // connection lost while the answer travelled back): nobody here can know.
        tracing::error!(error = %e, "a batch of reviews did not commit cleanly");
        Problem::outcome_unknown()
    })?;
    for (i, status, body) in responses {
        answers[i] = Some(stored_response(status, body, false));
    }
    Ok(Some(answers.into_iter().map(|a| a.expect("every request answered")).collect()))
}

/// Runs the requests in the unit's transaction, each kind as one attempt (a batch holds one
/// kind: its key says which): each request's answer, or its refusal.
async fn run(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    requests: &[&Request],
    today: NaiveDate,
) -> Result<Vec<Result<(StatusCode, Value), Problem>>, Problem> {
    use super::routes::applications::{application_json, submitted_json};
    let mut answers: Vec<Option<Result<(StatusCode, Value), Problem>>> =
        requests.iter().map(|_| None).collect();
    let mut db = Db::unit(conn, &state.database);
    let reviews: Vec<(usize, &ReviewRequest)> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Request::Review(r) => Some((i, r)),
            Request::Submit { .. } => None,
        })
        .collect();
    if !reviews.is_empty() {
        let batch: Vec<ReviewRequest> = reviews.iter().map(|(_, r)| (*r).clone()).collect();
        let outcomes = review_together(&mut db, &batch, today).await.map_err(Problem::from)?;
        for ((i, _), outcome) in reviews.iter().zip(outcomes) {
            answers[*i] = Some(
                outcome.map(|a| (StatusCode::OK, application_json(&a))).map_err(Problem::from),
            );
        }
    }
    let submissions: Vec<(usize, &SubmitRequest, &str, &str)> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Request::Submit { request, program, county } => {
                Some((i, request, &**program, &**county))
            }
            Request::Review(_) => None,
        })
        .collect();
    if !submissions.is_empty() {
        let batch: Vec<SubmitRequest> = submissions.iter().map(|s| s.1.clone()).collect();
        let outcomes =
            submit_together(&mut db, &state.keys, &batch, today).await.map_err(Problem::from)?;
        for ((i, _, program, county), outcome) in submissions.iter().zip(outcomes) {
            answers[*i] = Some(
                outcome
                    .map(|s| (StatusCode::CREATED, submitted_json(&s, program, county)))
                    .map_err(Problem::from),
            );
        }
    }
    Ok(answers.into_iter().map(|a| a.expect("every request run")).collect())
}

/// The answers of the requests whose keys are stored already (one statement).
async fn stored(
    conn: &mut sqlx::PgConnection,
    items: &[&Item],
) -> Result<Vec<Option<Response>>, Problem> {
    let claims: Vec<&Claim> = items.iter().filter_map(|i| i.claim.as_ref()).collect();
    let mut found: HashMap<(uuid::Uuid, String), (String, i16, Value)> = HashMap::new();
    if !claims.is_empty() {
        let tokens: Vec<uuid::Uuid> = claims.iter().map(|c| c.0).collect();
        let keys: Vec<&str> = claims.iter().map(|c| c.1.as_str()).collect();
        let rows: Vec<(uuid::Uuid, String, String, i16, Value)> = sqlx::query_as(
            // One index lookup per key whatever the estimates (a hash join would read the
            // whole table on every batch).
            "SELECT k.token_id, k.key, k.fingerprint, k.status, k.response
               FROM unnest($1::uuid[], $2::text[]) AS c(token_id, key)
              CROSS JOIN LATERAL (SELECT * FROM idempotency_keys i
                                   WHERE i.token_id = c.token_id AND i.key = c.key OFFSET 0) k",
        )
        .bind(&tokens)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?;
        for (token, key, fingerprint, status, body) in rows {
            found.insert((token, key), (fingerprint, status, body));
        }
    }
    Ok(items
        .iter()
        .map(|item| {
            let (token, key, fingerprint) = item.claim.as_ref()?;
            let (stored_fingerprint, status, body) = found.remove(&(*token, key.clone()))?;
            Some(
                answer_stored(key, fingerprint, &stored_fingerprint, status, body)
                    .unwrap_or_else(|p| p.into_response()),
            )
        })
        .collect())
}

/// Claims every key with its response in one statement: `false` when one of them was
/// claimed by another transaction meanwhile (waited for, if it had not ended).
async fn claim_all(
    conn: &mut sqlx::PgConnection,
    claims: &[(&Claim, i16, Value)],
) -> Result<bool, Problem> {
    if claims.is_empty() {
        return Ok(true);
    }
    let tokens: Vec<uuid::Uuid> = claims.iter().map(|c| c.0 .0).collect();
    let keys: Vec<&str> = claims.iter().map(|c| c.0 .1.as_str()).collect();
    let fingerprints: Vec<&str> = claims.iter().map(|c| c.0 .2.as_str()).collect();
    let statuses: Vec<i16> = claims.iter().map(|c| c.1).collect();
    let bodies: Vec<&Value> = claims.iter().map(|c| &c.2).collect();
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (token_id, key, fingerprint, status, response)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::jsonb[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&tokens)
    .bind(&keys)
    .bind(&fingerprints)
    .bind(&statuses)
    .bind(&bodies)
    .execute(conn)
    .await
    .map_err(claim_failed)?
    .rows_affected();
    Ok(inserted == claims.len() as u64)
}
