//! The unit of work of requests executed together ([`crate::commands::together`]): one
//! transaction holding a batch's events, and each request's Idempotency-Key with its response.
//!
//! As for a request on its own ([`super::unit`]), a key is claimed with its response at the
//! end, in the transaction that records the work: here the batch's keys in one statement.
//! Before the work, the keys already stored are read and their requests answered from them
//! (replayed, or `idempotency_conflict`) without running. A key claimed by a concurrent
//! transaction after that read is found at the claim: the whole batch is rolled back and run
//! again, and the second run finds the key stored. Two requests of one batch with the same key
//! run in rounds, one after the other: the second finds the first's answer.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::Value;

use super::problem::Problem;
use super::unit::{answer_stored, claim_failed, stored_response};
use super::AppState;
use crate::commands::applications::{review_together, ReviewRequest};
use crate::commands::{Db, COMMAND_ATTEMPTS_MAX};

/// An Idempotency-Key as a request claims it: (token, key, fingerprint).
pub type Claim = (uuid::Uuid, String, String);

/// One review as a batch takes it.
#[derive(Debug)]
pub struct ReviewItem {
    pub request: ReviewRequest,
    pub claim: Option<Claim>,
}

/// Answers a batch of reviews, each with its response, in order.
pub async fn reviews(state: &AppState, items: Vec<ReviewItem>, today: NaiveDate) -> Vec<Response> {
    let mut answers: Vec<Option<Response>> = items.iter().map(|_| None).collect();
    let mut left: Vec<usize> = (0..items.len()).collect();
    while !left.is_empty() {
        // This round: each key's first request still unanswered.
        let mut keys = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = left.into_iter().partition(|&i| {
            items[i].claim.as_ref().is_none_or(|(token, key, _)| keys.insert((*token, key)))
        });
        let round_items: Vec<&ReviewItem> = round.iter().map(|&i| &items[i]).collect();
        for (i, answer) in round.iter().zip(reviews_once(state, &round_items, today).await) {
            answers[*i] = Some(answer);
        }
        left = later;
    }
    answers.into_iter().map(|a| a.expect("every request answered")).collect()
}

/// One round of [`reviews`]: no two requests with the same key.
async fn reviews_once(state: &AppState, items: &[&ReviewItem], today: NaiveDate) -> Vec<Response> {
    let all = |p: Problem| items.iter().map(|_| p.clone().into_response()).collect();
    for _ in 0..COMMAND_ATTEMPTS_MAX {
        match attempt(state, items, today).await {
            Ok(Some(answers)) => return answers,
            // A key claimed meanwhile by another transaction: run again.
            Ok(None) => continue,
            Err(p) => return all(p),
        }
    }
    all(Problem::from(crate::store::AppendError::Contended))
}

/// One transaction: the answers, or `None` when a key was found claimed at the end (nothing
/// recorded).
async fn attempt(
    state: &AppState,
    items: &[&ReviewItem],
    today: NaiveDate,
) -> Result<Option<Vec<Response>>, Problem> {
    let mut tx = state.pool.begin().await?;
    let mut answers: Vec<Option<Response>> = stored(&mut tx, items).await?;
    let running: Vec<usize> = (0..items.len()).filter(|&i| answers[i].is_none()).collect();
    let requests: Vec<ReviewRequest> = running.iter().map(|&i| items[i].request.clone()).collect();
    let outcomes = review_together(&mut Db::unit(&mut tx, &state.database), &requests, today)
        .await
        .map_err(Problem::from)?;
    let mut claims = Vec::new();
    let mut responses = Vec::new();
    for (&i, outcome) in running.iter().zip(outcomes) {
        let (status, body) = match outcome {
            Ok(app) => (StatusCode::OK, super::routes::applications::application_json(&app)),
            Err(e) => {
                let problem = Problem::from(e);
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

/// The answers of the requests whose keys are stored already (one statement).
async fn stored(
    conn: &mut sqlx::PgConnection,
    items: &[&ReviewItem],
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
