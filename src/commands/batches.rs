//! Payout batches (支付批次) as a payroll moves through the bank: made by `issue_payouts`
//! (`PayoutBatchIssued`), sent (`mark_sent`), answered payout by payout (settlements and the
//! bank's file, whose events carry the batch's tag), closed (`reconcile`). A batch's state is
//! the fold of the events tagged `batch:<id>` ([`projections::batches::Batch`]); each
//! transition appends at the batch stream's version it read, so two clerks cannot both send
//! or both close it.

use chrono::NaiveDate;
use events::batch::{PayoutBatchReconciled, PayoutBatchSent};
use events::{DomainEvent, Tag};
use projections::batches::Batch;

use super::applications::new_event;
use super::payouts::PayoutError;
use super::{execute, Attempt, Decided};
use crate::store::{Append, ExpectedVersion, NewEvent};

pub fn batch_stream(batch: &str) -> String {
    format!("payout-batch-{batch}")
}

pub fn batch_tag(batch: &str) -> Tag {
    Tag::parse(&format!("batch:{batch}")).expect("batch ids are uuids")
}

/// The state of a batch from its tagged events, and its stream's version.
pub(crate) async fn read_batch(
    a: &mut Attempt<'_>,
    batch: &str,
) -> Result<(Batch, i64), PayoutError> {
    let read = a.read_tagged(&[batch_tag(batch)]).await?;
    let state = Batch::fold(read.events.iter().map(|e| (e.event_type.as_str(), &e.data)))
        .expect("recorded events read as their schema")
        .ok_or_else(|| PayoutError::NotFound(format!("payout batch {batch}")))?;
    let version = read
        .events
        .iter()
        .filter(|e| e.stream_id == batch_stream(batch))
        .map(|e| e.stream_version)
        .max()
        .unwrap_or(0);
    Ok((state, version))
}

/// The state of a batch, read outside a command (`GET`): the same fold.
pub async fn load(
    conn: &mut sqlx::PgConnection,
    batch: &str,
) -> Result<Option<Batch>, sqlx::Error> {
    let read = crate::store::read_tagged(conn, &[batch_tag(batch)]).await?;
    Ok(Batch::fold(read.events.iter().map(|e| (e.event_type.as_str(), &e.data)))
        .expect("recorded events read as their schema"))
}

/// A batch's event: it belongs to a pool, not to one county.
pub(crate) fn batch_event(
    stream: &str,
    e: &impl DomainEvent,
    actor: &str,
    pool: &str,
    tag: Tag,
    on: NaiveDate,
) -> NewEvent {
    let mut event = new_event(stream, e, actor, pool, "", vec![tag], on);
    event.metadata.county = None;
    event
}

fn appending(
    batch: &Batch,
    event: &impl DomainEvent,
    actor: &str,
    on: NaiveDate,
    version: i64,
) -> Append {
    let stream = batch_stream(&batch.batch);
    let tag = batch_tag(&batch.batch);
    Append {
        events: vec![batch_event(&stream, event, actor, &batch.pool, tag.clone(), on)],
        expected: vec![(stream, ExpectedVersion::Exact(version))],
        // The batch's stream version alone guards its transitions: two sends or two closes
        // expect the same version and one fails. No tag condition is needed: the answers
        // (tagged with the batch) cannot change a decision here, since a close needs every
        // payout answered and a payout is answered once; and the bank file closes the batches
        // it answered in the same transaction as those answers, which a condition on the tag
        // would count as a concurrent writer.
        condition: None,
    }
}

/// Records that the batch's payment order went to the bank on `on`.
pub async fn mark_sent(
    db: impl Into<super::Db<'_>>,
    batch: &str,
    on: NaiveDate,
    actor: &str,
    today: NaiveDate,
) -> Result<Batch, PayoutError> {
    let mut db = db.into();
    if on > today {
        return Err(PayoutError::Invalid {
            field: "sent_on",
            message: format!("{on} is in the future"),
        });
    }
    execute!(&mut db, PayoutError, |a| {
        let (mut state, version) = read_batch(a, batch).await?;
        state.may_send()?;
        if on < state.issued_on {
            return Err(PayoutError::Invalid {
                field: "sent_on",
                message: format!("{on} is before the batch was issued ({})", state.issued_on),
            });
        }
        let e = PayoutBatchSent { batch: batch.to_string(), sent_on: on, sent_by: actor.into() };
        let append = appending(&state, &e, actor, on, version);
        state.sent_on = Some(on);
        Ok(Decided::append(append, state))
    })
}

/// Closes a batch the bank has answered in full, with its figures.
pub async fn reconcile(
    db: impl Into<super::Db<'_>>,
    batch: &str,
    actor: &str,
    today: NaiveDate,
) -> Result<PayoutBatchReconciled, PayoutError> {
    let mut db = db.into();
    reconcile_in(&mut db, batch, actor, today).await
}

/// [`reconcile`] in a caller's `Db` (the bank file's import closes the batches it answered).
pub(crate) async fn reconcile_in(
    db: &mut super::Db<'_>,
    batch: &str,
    actor: &str,
    today: NaiveDate,
) -> Result<PayoutBatchReconciled, PayoutError> {
    execute!(db, PayoutError, |a| {
        let (state, version) = read_batch(a, batch).await?;
        let e = state.may_reconcile(today, actor)?;
        let append = appending(&state, &e, actor, today, version);
        Ok(Decided::append(append, e))
    })
}

/// The batch a payout was issued in, if any (`GET /v1/payouts/{id}`).
pub async fn of_payout(
    conn: &mut sqlx::PgConnection,
    payout: &str,
) -> Result<Option<Batch>, sqlx::Error> {
    let read = crate::store::read_tagged(conn, &[super::payouts::payout_tag(payout)]).await?;
    let batch = read.events.iter().find_map(|e| {
        (e.event_type == events::application::PayoutIssued::TYPE && e.data["payout"] == payout)
            .then(|| e.data["batch"].as_str().map(str::to_string))
            .flatten()
    });
    match batch {
        Some(b) => load(conn, &b).await,
        None => Ok(None),
    }
}
