//! Erasing a person (个人信息删除): PIPL gives a person the right to have their personal data
//! deleted once its retention ends, and an append-only, hash-chained log must not stand in
//! the way. The person's values are sealed under a data key of their own (`person_keys`,
//! [`crate::personal::DataKey`]); erasing destroys it and records `PersonErased`, naming only
//! the person key and the day. Every hash, checkpoint and amount stays valid; the person key
//! stays too (README "Erasure": it is what keeps a person from being paid twice).

use chrono::NaiveDate;
use events::person::{person_stream, PersonErased};
use events::{DomainEvent, Metadata, Tag};
use projections::applications::Status;

use super::applications::{application_stream, fold_applications};
use super::{execute, CommandError, Decided};
use crate::personal::PersonKey;
use crate::store::{Append, AppendCondition, AppendError, ExpectedVersion, NewEvent};

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub person_key: String,
    pub erased_on: NaiveDate,
    /// The generation of the person's data key destroyed; none when the person had none (all
    /// their values predate per-person keys).
    pub data_key_generation: Option<i32>,
    /// Values of the person sealed before per-person keys existed (directly under the master
    /// key, `k<id>:`): erasure cannot make those unreadable cryptographically; views show them
    /// erased all the same. README "Erasure".
    pub legacy_values: usize,
    /// The person's applications, whose names and ID numbers views now show as erased.
    pub applications: Vec<String>,
}

/// Refusals, in precedence order.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// Nothing in the ledger is about this person.
    #[error("no person with this ID number or person key is recorded in the ledger")]
    UnknownPerson,
    #[error(
        "this person was already erased on {erased_on}, and nothing of theirs has been recorded \
         since; there is nothing left to erase"
    )]
    AlreadyErased { erased_on: NaiveDate },
    /// The personal data is still needed: an application is being decided, noticed or paid.
    #[error(
        "the person's applications {0:?} are still open (submitted, approved, in notice, cleared, \
         or paid and not settled); erase once they are settled, rejected, withdrawn or recovered"
    )]
    ApplicationsOpen(Vec<String>),
    #[error(transparent)]
    Store(#[from] AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ErasureError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ErasureError::UnknownPerson => "not_found",
            ErasureError::AlreadyErased { .. } => "already_erased",
            ErasureError::ApplicationsOpen(_) => "applications_open",
            ErasureError::Store(_) | ErasureError::Database(_) => "internal",
        }
    }
}

impl CommandError for ErasureError {
    fn store(&self) -> Option<&AppendError> {
        match self {
            ErasureError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether an application still needs its person's data (it is not finished).
fn open(status: Status) -> bool {
    !matches!(status, Status::Settled | Status::Rejected | Status::Withdrawn | Status::Recovered)
}

/// Erases a person: destroys their data key and records `PersonErased` (on `person-<key>`,
/// tagged `person:<key>`), one transaction. Holding the person's lock, like every submission
/// for them: a submission either came first (and its values are erased) or comes after (and
/// is sealed under a new data key).
pub async fn erase(
    db: impl Into<super::Db<'_>>,
    person: &PersonKey,
    actor: &str,
    today: NaiveDate,
) -> Result<Erased, ErasureError> {
    let mut db = db.into();
    let tag = Tag::person(person.as_str());
    let stream = person_stream(person.as_str());
    execute!(&mut db, ErasureError, |a| {
        let tags = std::slice::from_ref(&tag);
        let read = a.lock_read(tags, tags, &[], "", &[person.as_str()]).await?;
        let data_keys: Vec<crate::personal::data_keys::DataKeyRow> =
            serde_json::from_value(read.data_keys.clone())
                .map_err(|e| AppendError::DataKey(e.to_string()))?;
        let live_key = data_keys.iter().any(|k| k.sealed_key.is_some());
        let erasures: Vec<&crate::store::RecordedEvent> =
            read.events.iter().filter(|e| e.event_type == PersonErased::TYPE).collect();
        if read.events.is_empty() && data_keys.is_empty() {
            return Err(ErasureError::UnknownPerson);
        }
        if let Some(last) = erasures.last().filter(|_| !live_key) {
            let e: PersonErased =
                serde_json::from_value(last.data.clone()).expect("a recorded erasure");
            return Err(ErasureError::AlreadyErased { erased_on: e.erased_on });
        }
        // The person's applications, whole (the events of an application do not all carry
        // the person's tag): their rows and notice lines change, and the read models' changes
        // start from what this attempt read.
        let tagged = fold_applications(&read.events);
        let ids: Vec<String> = tagged.of_party(tag.as_str()).map(|a| a.id.clone()).collect();
        let mut events = read.events.clone();
        for id in &ids {
            events.extend(a.read_stream(&application_stream(id)).await?);
        }
        events.sort_by_key(|e| e.id);
        events.dedup_by_key(|e| e.id);
        let apps = fold_applications(&events);
        let open: Vec<String> = ids
            .iter()
            .filter(|id| apps.by_id.get(*id).is_some_and(|a| open(a.status)))
            .cloned()
            .collect();
        if !open.is_empty() {
            return Err(ErasureError::ApplicationsOpen(open));
        }
        let notices: std::collections::BTreeSet<String> =
            ids.iter().filter_map(|id| apps.by_id.get(id)?.notice.clone()).collect();
        for notice in notices {
            a.read_stream(&format!("notice-{notice}")).await?;
        }
        let legacy_values = crate::erasure::personal_values(&events, &apps)
            .iter()
            .filter(|v| v.person == person.as_str() && v.sealed.person_generation().is_none())
            .count();
        let data_key_generation =
            crate::personal::data_keys::erase(a.conn(), person.as_str()).await?;
        let event = PersonErased { person: person.as_str().to_string(), erased_on: today };
        let appending = Append {
            events: vec![NewEvent {
                stream_id: stream.clone(),
                event_type: PersonErased::TYPE.to_string(),
                schema_version: PersonErased::VERSION,
                data: serde_json::to_value(&event).expect("events serialise"),
                metadata: Metadata { actor: Some(actor.to_string()), ..Metadata::default() },
                tags: vec![tag.clone()],
                business_date: Some(today),
            }],
            expected: vec![(
                stream.clone(),
                erasures.last().map_or(ExpectedVersion::NoStream, |e| {
                    ExpectedVersion::Exact(e.stream_version)
                }),
            )],
            condition: Some(AppendCondition { tags: vec![tag.clone()], after: read.read_point }),
        };
        Ok(Decided::append(
            appending,
            Erased {
                person_key: person.as_str().to_string(),
                erased_on: today,
                data_key_generation,
                legacy_values,
                applications: ids.clone(),
            },
        ))
    })
}
