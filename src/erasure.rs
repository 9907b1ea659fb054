//! What an erasure changes in what the ledger shows (the command is
//! `commands::persons::erase`).
//!
//! - [`personal_values`]: every personal value an event holds, with the person it is about,
//!   its field and record (what it was sealed bound to) and where its masked form is.
//! - [`Opener`]: opens those values for the views allowed to show them, and says which are
//!   erased: a value sealed under a destroyed data key, or (sealed before per-person keys, under
//!   the master key) recorded before an erasure of its person. Erased values are shown as
//!   [`ERASED`], never an error.
//! - [`redact`]: an event's data as a view shows it, with the masked forms of erased persons
//!   replaced by [`ERASED`]. The log itself is never changed: the auditors' feed and exports
//!   carry the events as stored (their sealed values no longer open).

use std::collections::BTreeMap;

use events::application::{ApplicationSubmitted, PayoutIssued};
use events::person::{person_stream, PersonErased};
use events::DomainEvent;
use projections::applications::Applications;
use serde_json::Value;
use sqlx::PgConnection;

use crate::personal::{data_keys, DataKey, Field, Keys, OpenError, Sealed, ERASED};
use crate::store::RecordedEvent;

/// One personal value in an event.
#[derive(Debug, Clone)]
pub struct PersonalValue {
    /// The event holding it.
    pub event_id: i64,
    /// The person key of the person it is about.
    pub person: String,
    pub field: Field,
    /// What it was sealed bound to (the application's stream, a trainee line, a payout).
    pub record: String,
    pub sealed: Sealed,
    /// JSON pointers into the event's data: the sealed value, and its masked form.
    pub sealed_at: String,
    pub masked_at: Option<String>,
    /// The payout, for an account.
    pub payout: Option<String>,
    /// The trainee line, for an on-the-job training claim.
    pub trainee: Option<usize>,
}

/// Every personal value of `events`: the applicant's ID number, name and certificate number,
/// each trainee's ID number and name, and the account of a reissue paid to a person. `apps` is
/// the fold of the applications the events belong to (whose a payout's account is).
pub fn personal_values(events: &[RecordedEvent], apps: &Applications) -> Vec<PersonalValue> {
    let mut values = Vec::new();
    for e in events {
        let mut push = |person: &str,
                        field: Field,
                        record: &str,
                        sealed_at: String,
                        masked_at: Option<String>,
                        payout: Option<String>,
                        trainee: Option<usize>| {
            if let Some(sealed) = e.data.pointer(&sealed_at).and_then(Value::as_str) {
                values.push(PersonalValue {
                    event_id: e.id,
                    person: person.to_string(),
                    field,
                    record: record.to_string(),
                    sealed: Sealed::from_recorded(sealed),
                    sealed_at,
                    masked_at,
                    payout,
                    trainee,
                });
            }
        };
        match e.event_type.as_str() {
            ApplicationSubmitted::TYPE => {
                let record = e.stream_id.as_str();
                if let Some(person) = e.data.pointer("/person/key").and_then(Value::as_str) {
                    for (field, name) in [(Field::IdNumber, "id_number"), (Field::Name, "name")] {
                        push(
                            person,
                            field,
                            record,
                            format!("/person/{name}_sealed"),
                            Some(format!("/person/{name}_masked")),
                            None,
                            None,
                        );
                    }
                    push(
                        person,
                        Field::CertificateNumber,
                        record,
                        "/details/certificate/number_sealed".into(),
                        Some("/details/certificate/number_masked".into()),
                        None,
                        None,
                    );
                }
                let trainees = e.data.pointer("/details/trainees").and_then(Value::as_array);
                for (i, t) in trainees.into_iter().flatten().enumerate() {
                    let Some(person) = t.get("key").and_then(Value::as_str) else { continue };
                    let line = format!("{record}/trainees[{i}]");
                    for (field, name) in [(Field::IdNumber, "id_number"), (Field::Name, "name")] {
                        push(
                            person,
                            field,
                            &line,
                            format!("/details/trainees/{i}/{name}_sealed"),
                            Some(format!("/details/trainees/{i}/{name}_masked")),
                            None,
                            Some(i),
                        );
                    }
                }
            }
            PayoutIssued::TYPE if e.data.get("account").is_some() => {
                let Ok(p) = serde_json::from_value::<PayoutIssued>(e.data.clone()) else {
                    continue;
                };
                let Some(app) = apps.by_id.get(&p.application) else { continue };
                // A person's own account: not a host employer's, not an institution's.
                let Some(person) = app.party.strip_prefix("person:") else { continue };
                if p.payee.is_some() || app.payee.is_some() {
                    continue;
                }
                push(
                    person,
                    Field::BankAccount,
                    &format!("payout-{}", p.payout),
                    "/account/number_sealed".into(),
                    Some("/account/number_masked".into()),
                    Some(p.payout.clone()),
                    None,
                );
            }
            _ => {}
        }
    }
    values
}

/// Opens persons' values for a view allowed to show them, and knows which are erased.
#[derive(Debug)]
pub struct Opener {
    keys: Keys,
    /// (person, generation) → the data key, none once erased.
    data_keys: BTreeMap<(String, u32), Option<DataKey>>,
    /// Person → the id of their last erasure event.
    erased_after: BTreeMap<String, i64>,
}

impl Opener {
    /// Reads what opening `persons`' values needs: their data keys (every generation) and
    /// their erasures.
    pub async fn load(
        conn: &mut PgConnection,
        keys: &Keys,
        persons: &[&str],
    ) -> Result<Self, sqlx::Error> {
        let mut data = BTreeMap::new();
        for row in data_keys::all_of(conn, persons).await? {
            let Ok(generation) = u32::try_from(row.generation) else { continue };
            let key = match &row.sealed_key {
                Some(sealed) => Some(
                    DataKey::open(
                        keys,
                        &row.person_key,
                        generation,
                        &Sealed::from_recorded(sealed),
                    )
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                ),
                None => None,
            };
            data.insert((row.person_key.clone(), generation), key);
        }
        let streams: Vec<String> = persons.iter().map(|p| person_stream(p)).collect();
        let erasures: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stream_id, max(id) FROM events WHERE stream_id = ANY($1) AND event_type = $2
              GROUP BY stream_id",
        )
        .bind(&streams)
        .bind(PersonErased::TYPE)
        .fetch_all(conn)
        .await?;
        let erased_after = erasures
            .into_iter()
            .filter_map(|(stream, id)| Some((stream.strip_prefix("person-")?.to_string(), id)))
            .collect();
        Ok(Opener { keys: keys.clone(), data_keys: data, erased_after })
    }

    /// Whether `v` is erased: its data key was destroyed, or (a value sealed under the master
    /// key, before per-person keys) its person was erased after it was recorded.
    pub fn is_erased(&self, v: &PersonalValue) -> bool {
        match v.sealed.person_generation() {
            Some(generation) => {
                matches!(self.data_keys.get(&(v.person.clone(), generation)), Some(None))
            }
            None => self.erased_after.get(&v.person).is_some_and(|last| *last > v.event_id),
        }
    }

    /// The clear value, or none when erased.
    pub fn open(&self, v: &PersonalValue) -> Result<Option<String>, OpenError> {
        if self.is_erased(v) {
            return Ok(None);
        }
        match v.sealed.person_generation() {
            Some(generation) => match self.data_keys.get(&(v.person.clone(), generation)) {
                Some(Some(key)) => key.open_value(&v.sealed, v.field, &v.record).map(Some),
                _ => Err(OpenError::SealedForPerson(generation)),
            },
            None => v.sealed.open_bound(&self.keys, v.field, &v.record).map(Some),
        }
    }
}

/// The persons `values` are about, each once.
pub fn persons_of(values: &[PersonalValue]) -> Vec<&str> {
    let mut persons: Vec<&str> = values.iter().map(|v| v.person.as_str()).collect();
    persons.sort_unstable();
    persons.dedup();
    persons
}

/// `data` of the event `event_id` as views show it: the sealed and masked forms of its erased
/// values replaced by [`ERASED`].
pub fn redact(data: &Value, event_id: i64, values: &[PersonalValue], opener: &Opener) -> Value {
    let mut data = data.clone();
    for v in values.iter().filter(|v| v.event_id == event_id && opener.is_erased(v)) {
        for at in std::iter::once(&v.sealed_at).chain(v.masked_at.as_ref()) {
            if let Some(slot) = data.pointer_mut(at) {
                *slot = Value::String(ERASED.to_string());
            }
        }
    }
    data
}
