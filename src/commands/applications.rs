//! An application's life, for the programs paid to a person (skill upgrade, vocational
//! training): submit, review (approve or reject). Each command is one transaction.
//!
//! Hot aggregates are locked before they are read (`store::lock_tags`): one person's
//! submissions, one pool's quota for a year. Commands on them queue and proceed in order;
//! everything else runs in parallel.

use chrono::{Datelike, NaiveDate};
use events::application::{
    ApplicationApproved, ApplicationConfirmed, ApplicationRejected, ApplicationSubmitted,
    DecisionRecord, PersonRecord, SlotRecord,
};
use events::{DomainEvent, Metadata, Tag};
use policy::skill_upgrade::{self, SkillUpgradeApplication};
use policy::training::{self, TrainingApplication};
use policy::{
    mask_name, Applicant, DivisionCode, Level, PriorApplication, Program, Rejection, Subject,
};
use projections::applications::{Application, Applications, Status};
use projections::pools::Pools;

use super::{execute, CommandError, Decided};
use crate::personal::{DataKey, Field, Keys, PersonKey};
use crate::publishing::{policies_cached, policies_of, POLICIES_TAG};
use crate::store::{
    lock_tags, read_stream, Append, AppendCondition, AppendError, ExpectedVersion, NewEvent,
    RecordedEvent,
};

/// An application paid to a person, parsed from a request body.
#[derive(Debug, Clone)]
pub enum PersonApplication {
    SkillUpgrade(SkillUpgradeApplication),
    Training(TrainingApplication),
}

impl PersonApplication {
    fn program(&self) -> Program {
        match self {
            PersonApplication::SkillUpgrade(_) => Program::SkillUpgrade,
            PersonApplication::Training(_) => Program::VocationalTraining,
        }
    }

    fn county(&self) -> DivisionCode {
        match self {
            PersonApplication::SkillUpgrade(a) => a.county,
            PersonApplication::Training(a) => a.county,
        }
    }

    fn submitted_on(&self) -> NaiveDate {
        match self {
            PersonApplication::SkillUpgrade(a) => a.submitted_on,
            PersonApplication::Training(a) => a.submitted_on,
        }
    }

    fn business_date(&self) -> NaiveDate {
        match self {
            PersonApplication::SkillUpgrade(a) => a.business_date(),
            PersonApplication::Training(a) => a.business_date(),
        }
    }

    pub fn applicant(&self) -> &Applicant {
        match self {
            PersonApplication::SkillUpgrade(a) => &a.applicant,
            PersonApplication::Training(a) => &a.applicant,
        }
    }

    fn subject_and_level(&self) -> (String, Option<Level>) {
        match self {
            PersonApplication::SkillUpgrade(a) => {
                (a.certificate.occupation_code.to_string(), Some(a.certificate.level))
            }
            PersonApplication::Training(a) => {
                let t = &a.training;
                let subject = t
                    .occupation_code
                    .as_ref()
                    .map(|c| c.to_string())
                    .or_else(|| t.item.clone())
                    .unwrap_or_default();
                (subject, t.level)
            }
        }
    }

    /// A training institution paid on the trainee's behalf.
    fn payee(&self) -> Option<events::application::EnterpriseRecord> {
        match self {
            PersonApplication::Training(a) => {
                a.payee.as_ref().map(|p| events::application::EnterpriseRecord {
                    credit_code: p.credit_code.to_string(),
                    name: p.name.trim().to_string(),
                })
            }
            PersonApplication::SkillUpgrade(_) => None,
        }
    }

    /// The non-personal, program-specific fields, as stored in the event.
    fn details(&self) -> serde_json::Value {
        match self {
            PersonApplication::SkillUpgrade(a) => {
                serde_json::json!({ "eligibility": a.eligibility, "certificate": a.certificate })
            }
            PersonApplication::Training(a) => serde_json::json!({
                "eligibility": a.eligibility, "training": a.training, "funding": a.funding,
            }),
        }
    }

    fn decide(
        &self,
        history: &[PriorApplication],
        policy: &policy::Policy,
    ) -> Result<policy::Decision, Vec<Rejection>> {
        match self {
            PersonApplication::SkillUpgrade(a) => skill_upgrade::decide(a, history, policy),
            PersonApplication::Training(a) => training::decide(a, history, policy),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    /// The policy refused it; the rejections come in precedence order.
    #[error("{}", .0.first().map(|r| r.message.as_str()).unwrap_or("refused"))]
    Refused(Vec<Rejection>),
    #[error("submitted_on: {0} is in the future; record facts once they have happened")]
    FutureDate(NaiveDate),
    #[error("county: {0} is not a registered county; register it first (POST /v1/counties)")]
    CountyNotFound(String),
    #[error("application {0} does not exist")]
    NotFound(String),
    #[error("application {id} is {status}; only a submitted application can be reviewed")]
    NotReviewable { id: String, status: &'static str },
    #[error("reviewer `{0}` submitted this application; another reviewer must review it (maker-checker)")]
    SelfReview(String),
    #[error("reasons: a rejection needs at least one reason the applicant can read")]
    NoReasons,
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("application {id} is {status}; only an application not yet paid can be withdrawn")]
    NotWithdrawable { id: String, status: &'static str },
    #[error(
        "pool {pool} has no expansion quota for {year}; the city finance bureau sets it first"
    )]
    QuotaNotSet { pool: String, year: i32 },
    /// 免申即享: review waits for the enterprise's confirmation.
    #[error(
        "application {0} was screened for 免申即享 and the enterprise has not confirmed it; \
         record the confirmation first (POST /v1/applications/{0}/confirmation): the enterprise \
         confirms before review (鲁人社发〔2024〕8号 七)"
    )]
    NotConfirmed(String),
    #[error(
        "application {id} {reason}; only a screened (免申即享) refund awaiting review is confirmed"
    )]
    NotConfirmable { id: String, reason: String },
    #[error(transparent)]
    Store(#[from] AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ApplicationError {
    /// The stable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            ApplicationError::Refused(r) => {
                r.first().map_or("validation_failed", |r| r.code.as_str())
            }
            ApplicationError::FutureDate(_)
            | ApplicationError::CountyNotFound(_)
            | ApplicationError::NoReasons
            | ApplicationError::Invalid { .. } => "validation_failed",
            ApplicationError::NotFound(_) => "not_found",
            ApplicationError::NotReviewable { .. }
            | ApplicationError::NotWithdrawable { .. }
            | ApplicationError::NotConfirmable { .. } => "invalid_state",
            ApplicationError::NotConfirmed(_) => "not_confirmed",
            ApplicationError::SelfReview(_) => "self_review_forbidden",
            ApplicationError::QuotaNotSet { .. } => "quota_not_set",
            ApplicationError::Store(_) | ApplicationError::Database(_) => "internal",
        }
    }
}

impl CommandError for ApplicationError {
    fn store(&self) -> Option<&AppendError> {
        match self {
            ApplicationError::Store(e) => Some(e),
            _ => None,
        }
    }
}

pub fn application_stream(id: &str) -> String {
    format!("application-{id}")
}

fn policies_tag() -> Tag {
    Tag::parse(POLICIES_TAG).expect("a valid tag")
}

pub(crate) fn new_event<E: DomainEvent>(
    stream: &str,
    e: &E,
    actor: &str,
    pool: &str,
    county: &str,
    tags: Vec<Tag>,
    on: NaiveDate,
) -> NewEvent {
    NewEvent {
        stream_id: stream.to_string(),
        event_type: E::TYPE.to_string(),
        schema_version: E::VERSION,
        data: serde_json::to_value(e).expect("events serialise"),
        metadata: Metadata {
            actor: Some(actor.to_string()),
            pool: Some(pool.to_string()),
            county: Some(county.to_string()),
            ..Metadata::default()
        },
        tags,
        business_date: Some(on),
    }
}

/// The request's details as recorded: a certificate's number is sealed like a name (under the
/// person's data key, bound to the application's stream) and shown masked (`**********0124`).
fn sealed_details(
    data_key: &DataKey,
    stream: &str,
    mut details: serde_json::Value,
) -> serde_json::Value {
    if let Some(certificate) = details.get_mut("certificate").and_then(|c| c.as_object_mut()) {
        if let Some(serde_json::Value::String(number)) = certificate.remove("number") {
            let sealed = data_key.seal(Field::CertificateNumber, stream, &number);
            let shown: String =
                number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            let masked = format!("{}{shown}", "*".repeat(number.chars().count().saturating_sub(4)));
            certificate.insert("number_sealed".into(), sealed.as_str().into());
            certificate.insert("number_masked".into(), masked.into());
        }
    }
    details
}

pub(crate) fn fold_applications(events: &[RecordedEvent]) -> Applications {
    let mut apps = Applications::default();
    for e in events {
        apps.apply(&e.event_type, &e.data).expect("recorded events read back");
    }
    apps
}

fn decision_record(decision: &policy::Decision) -> DecisionRecord {
    DecisionRecord {
        policy: decision.policy.id.to_string(),
        document: decision.policy.document.clone(),
        amount: decision.amount.value.value(),
        amount_rule: decision.amount.rule.to_string(),
        funding: decision.funding.value.as_str().to_string(),
        funding_rule: decision.funding.rule.to_string(),
        slot: decision.slot.as_ref().map(|s| SlotRecord {
            kind: match s.value.kind {
                policy::SlotKind::Base => "base".into(),
                policy::SlotKind::Extra => "extra".into(),
            },
            year: s.value.year,
            number: s.value.number,
            rule: s.rule.to_string(),
        }),
        lines: payee_lines(decision),
    }
}

/// The decision's lines as the event records them, where the amount is paid per payee (some
/// line names a host employer). Lines that all go to the applicant (on-the-job training's
/// per-trainee lines) are not recorded here: their parts are in `details` and the amount is
/// paid as one payout.
fn payee_lines(decision: &policy::Decision) -> Vec<events::application::LineRecord> {
    let per_payee = decision.lines.iter().any(|l| l.payee != policy::Payee::Applicant);
    if !per_payee {
        return Vec::new();
    }
    decision
        .lines
        .iter()
        .map(|l| events::application::LineRecord {
            payee: match &l.payee {
                policy::Payee::Applicant => None,
                policy::Payee::HostEmployer { credit_code, name } => {
                    Some(events::application::EnterpriseRecord {
                        credit_code: credit_code.to_string(),
                        name: name.clone(),
                    })
                }
            },
            basis: l.basis.clone(),
            amount: l.amount.value(),
            rule: l.rule.to_string(),
        })
        .collect()
}

/// An application's state as the policy's decisions count it.
fn prior_status(status: Status) -> policy::Status {
    match status {
        // A pending application holds its slot (DOMAIN.md).
        Status::Submitted => policy::Status::Pending,
        Status::Approved | Status::InNotice | Status::Cleared => policy::Status::Counted,
        Status::PayoutIssued | Status::Settled | Status::PayoutFailed => policy::Status::Paid,
        Status::Recovered => policy::Status::Recovered,
        Status::Rejected => policy::Status::Rejected,
        Status::Withdrawn => policy::Status::Withdrawn,
    }
}

/// A person's earlier application as the policy's decisions read it.
fn prior(a: &Application) -> Option<PriorApplication> {
    let program = match a.program.as_str() {
        "skill_upgrade" => Program::SkillUpgrade,
        "vocational_training" => Program::VocationalTraining,
        _ => return None,
    };
    Some(PriorApplication {
        program,
        subject: Subject::parse(&a.subject).ok()?,
        level: a.level.and_then(|l| Level::parse(&l.to_string()).ok()),
        submitted_on: a.submitted_on,
        status: prior_status(a.status),
        slot: None,
    })
}

async fn county_pool(
    conn: &mut sqlx::PgConnection,
    county: &DivisionCode,
) -> Result<DivisionCode, ApplicationError> {
    let events = read_stream(conn, &county_stream(county)).await?;
    county_pool_in(&events, county)
}

fn county_stream(county: &DivisionCode) -> String {
    format!("county-{county}")
}

/// The pool of `county`, from events that include its stream's.
fn county_pool_in(
    events: &[RecordedEvent],
    county: &DivisionCode,
) -> Result<DivisionCode, ApplicationError> {
    let county_stream = county_stream(county);
    let mut pools = Pools::default();
    for e in events.iter().filter(|e| e.stream_id == county_stream) {
        pools.apply(&e.event_type, &e.data).expect("recorded events read back");
    }
    pools
        .counties
        .get(&county.to_string())
        .and_then(|p| DivisionCode::parse(p).ok())
        .ok_or_else(|| ApplicationError::CountyNotFound(county.to_string()))
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub id: String,
    pub pool: DivisionCode,
    pub decision: policy::Decision,
}

/// One submission among several submitted together ([`submit_together`]).
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub app: PersonApplication,
    pub clerk: String,
    /// The token and person the submission came with, stamped on its event.
    pub issuer: Option<super::Issuer>,
}

/// Submits an application: the policy in force decides it against the person's history in
/// every county and year; a refusal records nothing.
pub async fn submit(
    db: impl Into<super::Db<'_>>,
    keys: &Keys,
    app: &PersonApplication,
    clerk: &str,
    today: NaiveDate,
) -> Result<Submitted, ApplicationError> {
    let mut db = db.into();
    let request =
        SubmitRequest { app: app.clone(), clerk: clerk.to_string(), issuer: db.issuer().cloned() };
    let mut outcomes =
        submit_together(&mut db, keys, std::slice::from_ref(&request), today).await?;
    outcomes.pop().expect("one outcome per submission")
}

/// Submits several applications in one attempt (合并执行): one statement takes every person's
/// lock and reads, holding them, the persons' data keys and events, the counties' streams and
/// the published policies' ids; each submission is decided in the order given against its
/// person's history (with the submissions before it in the attempt); one append records them.
/// Returns each submission's outcome in the order given: a refusal refuses that submission
/// alone. The error is the attempt's: nothing was recorded for any submission.
pub async fn submit_together(
    db: &mut super::Db<'_>,
    keys: &Keys,
    requests: &[SubmitRequest],
    today: NaiveDate,
) -> Result<Vec<Result<Submitted, ApplicationError>>, ApplicationError> {
    let database = db.database().to_string();
    // What does not depend on the ledger, once: each submission's person and new stream.
    let prepared: Vec<(PersonKey, Tag, String, String)> = requests
        .iter()
        .map(|r| {
            let person_key = PersonKey::derive(keys, &r.app.applicant().id_number);
            let person_tag = Tag::person(person_key.as_str());
            let id = uuid::Uuid::now_v7().to_string();
            let stream = application_stream(&id);
            (person_key, person_tag, id, stream)
        })
        .collect();
    let mut person_tags: Vec<Tag> = prepared.iter().map(|p| p.1.clone()).collect();
    person_tags.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    person_tags.dedup();
    let mut persons: Vec<&str> = prepared.iter().map(|p| p.0.as_str()).collect();
    persons.sort_unstable();
    persons.dedup();
    let mut county_streams: Vec<String> =
        requests.iter().map(|r| county_stream(&r.app.county())).collect();
    county_streams.sort();
    county_streams.dedup();
    let county_refs: Vec<&str> = county_streams.iter().map(String::as_str).collect();
    execute!(db, ApplicationError, |a| {
        // One round trip: the persons' locks (one person's submissions queue: ten at once in
        // two counties must see each other), then their data keys, their events, the counties'
        // (their pools) and the ids of the published policies, read holding the locks (an
        // erasure, which takes the same lock, comes wholly before or wholly after).
        let mut read =
            a.lock_read(&person_tags, &person_tags, &county_refs, POLICIES_TAG, &persons).await?;
        let data_keys = a.data_keys_from(keys, &persons, &read)?;
        let policies = policies_of(a.conn(), &database, std::mem::take(&mut read.tag_ids)).await?;
        // Each person's history: what was read, then the submissions before in this attempt.
        let mut histories: std::collections::HashMap<&str, Vec<RecordedEvent>> = person_tags
            .iter()
            .map(|t| {
                let mine = read.events.iter().filter(|e| e.tags.iter().any(|x| x == t.as_str()));
                (t.as_str(), mine.cloned().collect())
            })
            .collect();
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut appending = Append::default();
        for (r, (person_key, person_tag, id, stream)) in requests.iter().zip(&prepared) {
            let history = histories.get_mut(person_tag.as_str()).expect("every person read");
            let decided = decide_submission(
                r,
                person_key,
                person_tag,
                id,
                stream,
                &read.events,
                history,
                &policies,
                data_keys.of(person_key.as_str()),
                today,
            );
            outcomes.push(decided.map(|(event, submitted)| {
                history.push(recorded(&event));
                appending.expected.push((stream.clone(), ExpectedVersion::NoStream));
                appending.events.push(event);
                submitted
            }));
        }
        if appending.events.is_empty() {
            return Ok(Decided { append: None, answer: outcomes });
        }
        let mut tags: Vec<Tag> = appending.events.iter().flat_map(|e| e.tags.clone()).collect();
        tags.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        tags.dedup();
        tags.push(policies_tag());
        appending.condition = Some(AppendCondition { tags, after: read.read_point });
        Ok(Decided::append(appending, outcomes))
    })
}

/// A new event as the folds of the same attempt read it (not yet recorded: no id, no
/// position).
fn recorded(e: &NewEvent) -> RecordedEvent {
    RecordedEvent {
        id: 0,
        position: None,
        stream_id: e.stream_id.clone(),
        stream_version: 1,
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        data: e.data.clone(),
        metadata: e.metadata.clone(),
        tags: e.tags.iter().map(|t| t.as_str().to_string()).collect(),
        business_date: e.business_date,
        recorded_at: chrono::Utc::now(),
    }
}

/// Decides one submission (pure): its event and what the command answers.
#[allow(clippy::too_many_arguments)]
fn decide_submission(
    r: &SubmitRequest,
    person_key: &PersonKey,
    person_tag: &Tag,
    id: &str,
    stream: &str,
    read: &[RecordedEvent],
    history: &[RecordedEvent],
    policies: &[policy::Policy],
    data_key: &DataKey,
    today: NaiveDate,
) -> Result<(NewEvent, Submitted), ApplicationError> {
    let app = &r.app;
    if app.submitted_on() > today {
        return Err(ApplicationError::FutureDate(app.submitted_on()));
    }
    let applicant = app.applicant();
    let (subject, level) = app.subject_and_level();
    let pool = county_pool_in(read, &app.county())?;
    let prior: Vec<PriorApplication> =
        fold_applications(history).of_party(person_tag.as_str()).filter_map(prior).collect();
    let policy = policy::select(policies, app.program(), pool, app.business_date())
        .map_err(|r| ApplicationError::Refused(vec![r]))?;
    let decision = app.decide(&prior, policy).map_err(ApplicationError::Refused)?;
    let event = ApplicationSubmitted {
        application: id.to_string(),
        program: app.program().as_str().to_string(),
        county: app.county().to_string(),
        pool: pool.to_string(),
        submitted_on: app.submitted_on(),
        year: app.submitted_on().year(),
        submitted_by: r.clerk.clone(),
        enterprise: None,
        person: Some(PersonRecord {
            key: person_key.as_str().to_string(),
            // Under the person's data key (erasure destroys it), bound to this application's
            // stream: a sealed value copied into another record does not open there.
            id_number_sealed: data_key
                .seal(Field::IdNumber, stream, &applicant.id_number.to_string())
                .as_str()
                .to_string(),
            name_sealed: data_key.seal(Field::Name, stream, &applicant.name).as_str().to_string(),
            id_number_masked: applicant.id_number.masked(),
            name_masked: mask_name(&applicant.name),
        }),
        subject,
        level: level.map(|l| l.number()),
        details: sealed_details(data_key, stream, app.details()),
        decision: decision_record(&decision),
        payee: app.payee(),
        screened: false,
    };
    let mut event = new_event(
        stream,
        &event,
        &r.clerk,
        &pool.to_string(),
        &app.county().to_string(),
        vec![person_tag.clone()],
        app.submitted_on(),
    );
    if let Some(issuer) = &r.issuer {
        event.metadata.token_id = Some(issuer.token_id.clone());
        event.metadata.person = Some(issuer.person.clone());
    }
    Ok((event, Submitted { id: id.to_string(), pool, decision }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    Approve,
    Reject { reasons: Vec<String> },
}

/// One review among several reviewed together ([`review_together`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRequest {
    pub id: String,
    pub review: Review,
    pub reviewer: String,
    /// The token and person the review came with: stamped on its event, and the person
    /// maker-checker compares with the submitter's.
    pub issuer: Option<super::Issuer>,
}

/// Reviews a submitted application. Approval commits expansion-pilot money against the pool's
/// quota for the year; an approval that would pass the cap is refused with `quota_exceeded`.
pub async fn review(
    db: impl Into<super::Db<'_>>,
    id: &str,
    review: &Review,
    reviewer: &str,
    today: NaiveDate,
) -> Result<Application, ApplicationError> {
    let mut db = db.into();
    let request = ReviewRequest {
        id: id.to_string(),
        review: review.clone(),
        reviewer: reviewer.to_string(),
        issuer: db.issuer().cloned(),
    };
    let mut outcomes = review_together(&mut db, std::slice::from_ref(&request), today).await?;
    outcomes.pop().expect("one outcome per review")
}

/// Reviews several applications in one attempt (审核合并执行): one read of their streams, one
/// lock and read of each quota they count against, the decisions in the order given (each
/// sees the quota the approvals before it committed, and the status the reviews before it
/// left), one append. Returns each review's outcome in the order given: a refusal refuses that
/// review alone. The error is the attempt's (the database's, or contention after
/// [`super::COMMAND_ATTEMPTS_MAX`] conflicts): nothing was recorded for any review.
///
/// Why: the approvals of one pool queue on its quota lock, so one at a time they are bounded
/// by the round trips each makes under the lock; together, the group pays for the lock, the
/// reads and the append once.
pub async fn review_together(
    db: &mut super::Db<'_>,
    requests: &[ReviewRequest],
    today: NaiveDate,
) -> Result<Vec<Result<Application, ApplicationError>>, ApplicationError> {
    let database = db.database().to_string();
    let streams: Vec<String> = requests.iter().map(|r| application_stream(&r.id)).collect();
    let stream_refs: Vec<&str> = streams.iter().map(String::as_str).collect();
    execute!(db, ApplicationError, |a| {
        let events = a.read_streams(&stream_refs).await?;
        let mut states = ReviewStates::of(&events);
        // Every quota an approval may count against, locked in one order (two groups never
        // wait for each other in a cycle) and read holding the lock.
        let mut quota_tags: Vec<(Tag, String, i32)> = requests
            .iter()
            .filter(|r| r.review == Review::Approve)
            .filter_map(|r| states.get(&application_stream(&r.id)))
            .filter_map(|s| s.app.as_ref())
            .filter(|app| funding_of(app).counts_against_quota())
            .map(|app| (Tag::pool_year(&app.pool, app.year), app.pool.clone(), app.year))
            .collect();
        quota_tags.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        quota_tags.dedup_by(|x, y| x.0 == y.0);
        let mut quotas = std::collections::HashMap::new();
        let mut read_at = None;
        for (tag, pool, year) in &quota_tags {
            let locked =
                crate::read_models::lock_quota(a.conn(), tag, pool, *year, POLICIES_TAG).await?;
            let policies = policies_of(a.conn(), &database, locked.tag_ids).await?;
            quotas.insert(tag.as_str().to_string(), QuotaState::of(locked.quota, &policies));
            read_at = Some(locked.read_point);
        }
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut appending = Append::default();
        let mut counted = Vec::new();
        for (request, stream) in requests.iter().zip(&streams) {
            let decided = states.decide(stream, request, &mut quotas, today);
            outcomes.push(decided.map(|(event, app, expected)| {
                if let Some(tag) = event.tags.iter().find(|t| quotas.contains_key(t.as_str())) {
                    counted.push(tag.clone());
                }
                if let Some(expected) = expected {
                    appending.expected.push((stream.clone(), expected));
                }
                appending.events.push(event);
                app
            }));
        }
        if appending.events.is_empty() {
            return Ok(Decided { append: None, answer: outcomes });
        }
        // Anything appended under the quotas since the reads the approvals counted against.
        counted.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        counted.dedup();
        if let (false, Some(after)) = (counted.is_empty(), read_at) {
            appending.condition = Some(AppendCondition { tags: counted, after });
        }
        Ok(Decided::append(appending, outcomes))
    })
}

fn funding_of(app: &Application) -> policy::Funding {
    serde_json::from_value(serde_json::Value::String(app.funding.clone()))
        .expect("a recorded funding")
}

/// A quota as the approvals of one attempt see it: the rules it was set under and what the
/// approvals before have used; `None` when no quota was set for the pool and year.
#[derive(Debug)]
struct QuotaState(Option<(policy::quota::QuotaRules, policy::quota::QuotaUsage)>);

impl QuotaState {
    fn of(row: Option<crate::read_models::QuotaRow>, policies: &[policy::Policy]) -> Self {
        let Some(quota) = row else { return QuotaState(None) };
        // The rules of the quota policy the year's quota was set under (set_quota selects it
        // on January 1st; published policies never overlap, so the choice cannot change
        // afterwards and needs no condition here).
        let pool = DivisionCode::parse(&quota.pool).expect("a recorded pool");
        let jan_1 = NaiveDate::from_ymd_opt(quota.year, 1, 1).expect("a recorded year");
        let Ok(policy) = policy::select(policies, Program::ExpansionQuota, pool, jan_1) else {
            return QuotaState(None);
        };
        let policy::Rules::ExpansionQuota(rules) = &policy.rules else {
            unreachable!("select returns a policy of the program asked for")
        };
        let amount = |d| policy::Amount::from_decimal(d).expect("a recorded amount");
        let usage = policy::quota::QuotaUsage {
            cap: amount(quota.cap),
            committed: amount(quota.committed),
            paid: amount(quota.paid),
            recovered: amount(quota.recovered),
        };
        QuotaState(Some((rules.clone(), usage)))
    }
}

/// The applications an attempt of [`review_together`] read, as its decisions leave them.
#[derive(Debug)]
struct ReviewStates(std::collections::HashMap<String, ReviewState>);

#[derive(Debug)]
struct ReviewState {
    app: Option<Application>,
    /// The stream's version as read; `None` once this attempt has appended to it.
    version: Option<i64>,
    /// The person who submitted (events recorded before tokens named persons carry none).
    submitter: Option<String>,
}

impl ReviewStates {
    fn of(events: &[RecordedEvent]) -> Self {
        let mut states = std::collections::HashMap::new();
        for stream in events.chunk_by(|x, y| x.stream_id == y.stream_id) {
            let id = stream[0].stream_id.strip_prefix("application-").unwrap_or_default();
            let state = ReviewState {
                app: fold_applications(stream).by_id.remove(id),
                version: Some(stream.last().map_or(0, |e| e.stream_version)),
                submitter: stream[0].metadata.person.clone(),
            };
            states.insert(stream[0].stream_id.clone(), state);
        }
        ReviewStates(states)
    }

    fn get(&self, stream: &str) -> Option<&ReviewState> {
        self.0.get(stream)
    }

    /// Decides one review (pure): its event, the application after it, and the version its
    /// stream is expected at (`None` when a review before it in the attempt appended to the
    /// stream, which already set the expectation). The application's state and the quota are
    /// left as the review leaves them.
    fn decide(
        &mut self,
        stream: &str,
        r: &ReviewRequest,
        quotas: &mut std::collections::HashMap<String, QuotaState>,
        today: NaiveDate,
    ) -> Result<(NewEvent, Application, Option<ExpectedVersion>), ApplicationError> {
        let id = r.id.as_str();
        if let Review::Reject { reasons } = &r.review {
            if reasons.iter().all(|r| r.trim().is_empty()) {
                return Err(ApplicationError::NoReasons);
            }
        }
        let not_found = || ApplicationError::NotFound(id.to_string());
        let state = self.0.get_mut(stream).ok_or_else(not_found)?;
        let app = state.app.as_ref().ok_or_else(not_found)?;
        if app.status != Status::Submitted {
            return Err(ApplicationError::NotReviewable {
                id: id.to_string(),
                status: app.status.as_str(),
            });
        }
        if app.screened && app.confirmation.is_none() {
            return Err(ApplicationError::NotConfirmed(id.to_string()));
        }
        // Maker-checker compares persons: one person's two tokens are one person, whatever
        // their labels. Events recorded before tokens named persons (or by the CLI) carry no
        // person; then the labels are compared, as before.
        let same_person = match (&state.submitter, &r.issuer) {
            (Some(submitter), Some(issuer)) => *submitter == issuer.person,
            _ => app.submitted_by == r.reviewer,
        };
        if same_person {
            return Err(ApplicationError::SelfReview(r.reviewer.clone()));
        }
        let reviewer = r.reviewer.as_str();
        let person_tag = app.party_tag();
        let mut event = match &r.review {
            Review::Reject { reasons } => {
                let e = ApplicationRejected {
                    application: id.to_string(),
                    reasons: reasons
                        .iter()
                        .map(|r| r.trim().to_string())
                        .filter(|r| !r.is_empty())
                        .collect(),
                    reviewer: reviewer.to_string(),
                    rejected_on: today,
                };
                new_event(stream, &e, reviewer, &app.pool, &app.county, vec![person_tag], today)
            }
            Review::Approve => {
                let funding = funding_of(app);
                let counts = funding.counts_against_quota();
                let mut tags = vec![person_tag];
                if counts {
                    let quota_tag = Tag::pool_year(&app.pool, app.year);
                    let not_set =
                        || ApplicationError::QuotaNotSet { pool: app.pool.clone(), year: app.year };
                    let quota = quotas.get_mut(quota_tag.as_str()).and_then(|q| q.0.as_mut());
                    let (rules, usage) = quota.ok_or_else(not_set)?;
                    // A pilot subsidy's category is its subject (`submit_pilot`).
                    let category =
                        policy::quota::SpendingCategory::of(&app.program).or_else(|| {
                            (app.program == Program::PilotSubsidy.as_str())
                                .then(|| policy::pilot_subsidy::PilotCategory::parse(&app.subject))
                                .flatten()
                                .map(|c| c.spending())
                        });
                    let money = policy::Money::from_decimal(app.amount).expect("a recorded amount");
                    rules
                        .admit(funding, category, *usage, money)
                        .map_err(|r| ApplicationError::Refused(vec![r]))?;
                    // The approvals after this one in the attempt see its money committed.
                    usage.committed =
                        policy::Amount::from_decimal(usage.committed.value() + money.value())
                            .expect("committed money stays an amount");
                    tags.push(quota_tag);
                }
                let e = ApplicationApproved {
                    application: id.to_string(),
                    pool: app.pool.clone(),
                    year: app.year,
                    amount: app.amount,
                    funding: app.funding.clone(),
                    counts_against_quota: counts,
                    reviewer: reviewer.to_string(),
                    approved_on: today,
                };
                new_event(stream, &e, reviewer, &app.pool, &app.county, tags, today)
            }
        };
        if let Some(issuer) = &r.issuer {
            event.metadata.token_id = Some(issuer.token_id.clone());
            event.metadata.person = Some(issuer.person.clone());
        }
        let mut app = app.clone();
        app.status = match r.review {
            Review::Approve => Status::Approved,
            Review::Reject { .. } => Status::Rejected,
        };
        state.app = Some(app.clone());
        let expected = state.version.take().map(ExpectedVersion::Exact);
        Ok((event, app, expected))
    }
}

/// Withdraws an application not yet paid (撤回). Its annual slot is freed, and so is any quota
/// money its approval committed.
pub async fn withdraw(
    db: impl Into<super::Db<'_>>,
    id: &str,
    reason: &str,
    clerk: &str,
    today: NaiveDate,
) -> Result<Application, ApplicationError> {
    let mut db = db.into();
    if reason.trim().is_empty() {
        return Err(ApplicationError::Invalid {
            field: "reason",
            message: "say why the application is withdrawn".into(),
        });
    }
    let stream = application_stream(id);
    execute!(&mut db, ApplicationError, |a| {
        let events = a.read_stream(&stream).await?;
        let version = events.last().map_or(0, |e| e.stream_version);
        let mut app = fold_applications(&events)
            .by_id
            .remove(id)
            .ok_or_else(|| ApplicationError::NotFound(id.to_string()))?;
        let committed = match app.status {
            Status::Submitted => false,
            Status::Approved | Status::InNotice | Status::Cleared => true,
            other => {
                return Err(ApplicationError::NotWithdrawable {
                    id: id.to_string(),
                    status: other.as_str(),
                })
            }
        };
        let mut tags = vec![app.party_tag()];
        if committed && app.funding == policy::Funding::ExpansionPilot.as_str() {
            // Quota readers must see the release.
            tags.push(Tag::pool_year(&app.pool, app.year));
        }
        let e = events::application::ApplicationWithdrawn {
            application: id.to_string(),
            reason: reason.trim().to_string(),
            withdrawn_by: clerk.to_string(),
            withdrawn_on: today,
        };
        let appending = Append {
            events: vec![new_event(&stream, &e, clerk, &app.pool, &app.county, tags, today)],
            expected: vec![(stream.clone(), ExpectedVersion::Exact(version))],
            condition: None,
        };
        app.status = Status::Withdrawn;
        Ok(Decided::append(appending, app))
    })
}

/// Submits a job-stabilization refund (稳岗返还) for an enterprise: the policy in force decides
/// it against the enterprise's earlier refunds (one a year). Refunds are ordinary
/// unemployment-insurance spending and do not count against the expansion quota.
pub async fn submit_refund(
    db: impl Into<super::Db<'_>>,
    app: &policy::job_stabilization::JobStabilizationApplication,
    clerk: &str,
    today: NaiveDate,
) -> Result<Submitted, ApplicationError> {
    let mut db = db.into();
    if app.submitted_on > today {
        return Err(ApplicationError::FutureDate(app.submitted_on));
    }
    let credit_code = app.enterprise.credit_code.to_string();
    let party = Tag::enterprise(&credit_code);
    let id = uuid::Uuid::now_v7().to_string();
    let stream = application_stream(&id);
    let database = db.database().to_string();
    execute!(&mut db, ApplicationError, |a| {
        let pool = county_pool(a.conn(), &app.county).await?;
        lock_tags(a.conn(), std::slice::from_ref(&party)).await?;
        let read = a.read_tagged(std::slice::from_ref(&party)).await?;
        let policies = policies_cached(a.conn(), &database).await?;
        let history: Vec<policy::job_stabilization::PriorRefund> = fold_applications(&read.events)
            .of_party(party.as_str())
            .map(|a| policy::job_stabilization::PriorRefund {
                submitted_on: a.submitted_on,
                status: prior_status(a.status),
            })
            .collect();
        let policy =
            policy::select(&policies, Program::JobStabilizationRefund, pool, app.business_date())
                .map_err(|r| ApplicationError::Refused(vec![r]))?;
        let decision = policy::job_stabilization::decide(app, &history, policy)
            .map_err(ApplicationError::Refused)?;
        let event = ApplicationSubmitted {
            application: id.clone(),
            program: Program::JobStabilizationRefund.as_str().to_string(),
            county: app.county.to_string(),
            pool: pool.to_string(),
            submitted_on: app.submitted_on,
            year: app.submitted_on.year(),
            submitted_by: clerk.to_string(),
            person: None,
            enterprise: Some(events::application::EnterpriseRecord {
                credit_code: credit_code.clone(),
                name: app.enterprise.name.trim().to_string(),
            }),
            subject: credit_code.clone(),
            level: None,
            details: serde_json::json!({
                "enterprise": app.enterprise, "premiums": app.premiums, "staff": app.staff,
                "dispatch": app.dispatch, "pool_reserve": app.pool_reserve,
            }),
            decision: decision_record(&decision),
            payee: None,
            screened: app.screened,
        };
        let appending = Append {
            events: vec![new_event(
                &stream,
                &event,
                clerk,
                &pool.to_string(),
                &app.county.to_string(),
                vec![party.clone()],
                app.submitted_on,
            )],
            expected: vec![(stream.clone(), ExpectedVersion::NoStream)],
            condition: Some(AppendCondition {
                tags: vec![party.clone(), policies_tag()],
                after: read.read_point,
            }),
        };
        Ok(Decided::append(appending, Submitted { id: id.clone(), pool, decision }))
    })
}

/// Submits one of the other expansion-pilot subsidies (职业技能评价补贴, 岗位补贴, 社会保险补贴):
/// the amount as the office entered it, decided under the expansion-quota policy in force on
/// the submission date (`policy::pilot_subsidy`), always `expansion_pilot`; the cap is checked
/// at review like a training subsidy's. The beneficiary is a person (tagged and sealed like
/// any applicant) or a unit (credit code and name, public).
pub async fn submit_pilot(
    db: impl Into<super::Db<'_>>,
    keys: &Keys,
    app: &policy::pilot_subsidy::PilotSubsidyApplication,
    clerk: &str,
    today: NaiveDate,
) -> Result<Submitted, ApplicationError> {
    use policy::pilot_subsidy::Beneficiary;
    let mut db = db.into();
    if app.submitted_on > today {
        return Err(ApplicationError::FutureDate(app.submitted_on));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let stream = application_stream(&id);
    let (party, person_key, enterprise) = match &app.beneficiary {
        Beneficiary::Person { id_number, .. } => {
            let key = PersonKey::derive(keys, id_number);
            (Tag::person(key.as_str()), Some(key), None)
        }
        Beneficiary::Unit { credit_code, name } => (
            Tag::enterprise(&credit_code.to_string()),
            None,
            Some(events::application::EnterpriseRecord {
                credit_code: credit_code.to_string(),
                name: name.trim().to_string(),
            }),
        ),
    };
    let database = db.database().to_string();
    execute!(&mut db, ApplicationError, |a| {
        let pool = county_pool(a.conn(), &app.county).await?;
        lock_tags(a.conn(), std::slice::from_ref(&party)).await?;
        // Read so that the party's rows (slots) are folded from what this attempt saw.
        let read = a.read_tagged(std::slice::from_ref(&party)).await?;
        // A person's values under their data key (read holding the person's lock).
        let person = match (&app.beneficiary, &person_key) {
            (Beneficiary::Person { id_number, name }, Some(key)) => {
                let data_keys = a.data_keys(keys, &[key.as_str()]).await?;
                let data_key = data_keys.of(key.as_str());
                Some(PersonRecord {
                    key: key.as_str().to_string(),
                    id_number_sealed: data_key
                        .seal(Field::IdNumber, &stream, &id_number.to_string())
                        .as_str()
                        .to_string(),
                    name_sealed: data_key
                        .seal(Field::Name, &stream, name.trim())
                        .as_str()
                        .to_string(),
                    id_number_masked: id_number.masked(),
                    name_masked: mask_name(name.trim()),
                })
            }
            _ => None,
        };
        let policies = policies_cached(a.conn(), &database).await?;
        let quota_policy =
            policy::select(&policies, Program::ExpansionQuota, pool, app.business_date()).map_err(
                |mut r| {
                    r.message = format!(
                        "no expansion pilot is in force in pool {pool} on {}: pilot subsidies \
                         exist only while an expansion-quota policy covers the submission date",
                        app.submitted_on
                    );
                    r.field = "submitted_on".into();
                    ApplicationError::Refused(vec![r])
                },
            )?;
        let decision =
            policy::pilot_subsidy::decide(app, quota_policy).map_err(ApplicationError::Refused)?;
        let event = ApplicationSubmitted {
            application: id.clone(),
            program: Program::PilotSubsidy.as_str().to_string(),
            county: app.county.to_string(),
            pool: pool.to_string(),
            submitted_on: app.submitted_on,
            year: app.submitted_on.year(),
            submitted_by: clerk.to_string(),
            person,
            enterprise: enterprise.clone(),
            // The category: what review reads to count it against the cap.
            subject: app.category.as_str().to_string(),
            level: None,
            details: serde_json::json!({
                "category": app.category, "amount": app.amount, "basis": app.basis.trim(),
            }),
            decision: decision_record(&decision),
            payee: None,
            screened: false,
        };
        let appending = Append {
            events: vec![new_event(
                &stream,
                &event,
                clerk,
                &pool.to_string(),
                &app.county.to_string(),
                vec![party.clone()],
                app.submitted_on,
            )],
            expected: vec![(stream.clone(), ExpectedVersion::NoStream)],
            condition: Some(AppendCondition {
                tags: vec![party.clone(), policies_tag()],
                after: read.read_point,
            }),
        };
        Ok(Decided::append(appending, Submitted { id: id.clone(), pool, decision }))
    })
}

/// Submits an on-the-job training claim (以工代训) for an enterprise: one line per trainee
/// (the policy's monthly amount × months, at most `months_max` per person over all claims),
/// the application's amount their sum. Each trainee is a person like an applicant: the event
/// holds their keyed hash, sealed ID number and name, and masked forms, never the clear
/// number, and carries the trainee's `person:` tag, so a later claim (by any enterprise)
/// reads the months already claimed for that person from the person's tagged history.
pub async fn submit_on_the_job_training(
    db: impl Into<super::Db<'_>>,
    keys: &Keys,
    app: &policy::on_the_job_training::OnTheJobTrainingApplication,
    clerk: &str,
    today: NaiveDate,
) -> Result<Submitted, ApplicationError> {
    let mut db = db.into();
    if app.submitted_on > today {
        return Err(ApplicationError::FutureDate(app.submitted_on));
    }
    let credit_code = app.enterprise.credit_code.to_string();
    let party = Tag::enterprise(&credit_code);
    let trainee_keys: Vec<PersonKey> =
        app.trainees.iter().map(|t| PersonKey::derive(keys, &t.id_number)).collect();
    let mut tags = vec![party.clone()];
    for k in &trainee_keys {
        let t = Tag::person(k.as_str());
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let stream = application_stream(&id);
    let database = db.database().to_string();
    execute!(&mut db, ApplicationError, |a| {
        let pool = county_pool(a.conn(), &app.county).await?;
        // The enterprise's claims and every trainee's queue: two claims for one person at
        // once must see each other's months.
        lock_tags(a.conn(), &tags).await?;
        let read = a.read_tagged(&tags).await?;
        let policies = policies_cached(a.conn(), &database).await?;
        let apps = fold_applications(&read.events);
        // Months already claimed per person, from the trainee lines of earlier claims.
        let mut history = Vec::new();
        for e in read.events.iter().filter(|e| e.event_type == ApplicationSubmitted::TYPE) {
            let Ok(prior) = serde_json::from_value::<ApplicationSubmitted>(e.data.clone()) else {
                continue;
            };
            if prior.program != Program::OnTheJobTraining.as_str() {
                continue;
            }
            let Some(status) = apps.by_id.get(&prior.application).map(|a| prior_status(a.status))
            else {
                continue;
            };
            let lines = prior.details.get("trainees").and_then(|t| t.as_array());
            for line in lines.into_iter().flatten() {
                let key = line.get("key").and_then(|k| k.as_str());
                let months = line.get("months_paid").and_then(|m| m.as_u64()).unwrap_or(0);
                let Some(i) = trainee_keys.iter().position(|k| Some(k.as_str()) == key) else {
                    continue;
                };
                history.push(policy::on_the_job_training::PriorTraineeMonths {
                    id_number: app.trainees[i].id_number.clone(),
                    months: months as u32,
                    status,
                });
            }
        }
        let policy =
            policy::select(&policies, Program::OnTheJobTraining, pool, app.business_date())
                .map_err(|r| ApplicationError::Refused(vec![r]))?;
        let decision = policy::on_the_job_training::decide(app, &history, policy)
            .map_err(ApplicationError::Refused)?;
        let policy::Rules::OnTheJobTraining(rules) = &policy.rules else {
            unreachable!("select returns a policy of the program asked for")
        };
        // The decision has one line per trainee, in order (a refused trainee refuses it all).
        assert_eq!(decision.lines.len(), app.trainees.len(), "one line per trainee");
        // Each trainee's values under their own data key (read holding their locks).
        let persons: Vec<&str> = trainee_keys.iter().map(PersonKey::as_str).collect();
        let data_keys = a.data_keys(keys, &persons).await?;
        let trainees: Vec<serde_json::Value> = app
            .trainees
            .iter()
            .zip(&trainee_keys)
            .zip(&decision.lines)
            .enumerate()
            .map(|(i, ((t, key), line))| {
                use rust_decimal::prelude::ToPrimitive;
                let months_paid = (line.amount.value() / rules.monthly_amount.value())
                    .to_u32()
                    .expect("a line is whole months of the monthly amount");
                let field = format!("{stream}/trainees[{i}]");
                let data_key = data_keys.of(key.as_str());
                serde_json::json!({
                    "key": key.as_str(),
                    "id_number_sealed": data_key.seal(Field::IdNumber, &field, &t.id_number.to_string()).as_str(),
                    "name_sealed": data_key.seal(Field::Name, &field, t.name.trim()).as_str(),
                    "id_number_masked": t.id_number.masked(),
                    "name_masked": mask_name(t.name.trim()),
                    "first_insured_with_enterprise_on": t.first_insured_with_enterprise_on,
                    "months": t.months,
                    "months_paid": months_paid,
                    "amount": line.amount,
                    "rule": line.rule,
                })
            })
            .collect();
        let event = ApplicationSubmitted {
            application: id.clone(),
            program: Program::OnTheJobTraining.as_str().to_string(),
            county: app.county.to_string(),
            pool: pool.to_string(),
            submitted_on: app.submitted_on,
            year: app.submitted_on.year(),
            submitted_by: clerk.to_string(),
            person: None,
            enterprise: Some(events::application::EnterpriseRecord {
                credit_code: credit_code.clone(),
                name: app.enterprise.name.trim().to_string(),
            }),
            subject: credit_code.clone(),
            level: None,
            details: serde_json::json!({
                "enterprise": app.enterprise, "trainees": trainees,
            }),
            decision: decision_record(&decision),
            payee: None,
            screened: false,
        };
        let mut condition_tags = tags.clone();
        condition_tags.push(policies_tag());
        let appending = Append {
            events: vec![new_event(
                &stream,
                &event,
                clerk,
                &pool.to_string(),
                &app.county.to_string(),
                tags.clone(),
                app.submitted_on,
            )],
            expected: vec![(stream.clone(), ExpectedVersion::NoStream)],
            condition: Some(AppendCondition { tags: condition_tags, after: read.read_point }),
        };
        Ok(Decided::append(appending, Submitted { id: id.clone(), pool, decision }))
    })
}

/// An enterprise's confirmation of a refund the office screened it for (免申即享).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The enterprise's person who confirmed.
    pub confirmed_by: String,
    pub confirmed_on: NaiveDate,
    pub size_class: policy::job_stabilization::SizeClass,
    pub corporate_account: bool,
}

/// Records that the enterprise confirmed a screened refund (免申即享: 比对筛选 → 告知 → 企业确认 →
/// 审核 → 公示 → 拨付), with the account it is paid to by the pure rule
/// `policy::job_stabilization::refund_account`. Only a screened refund still awaiting review,
/// once.
pub async fn confirm_screened(
    db: impl Into<super::Db<'_>>,
    id: &str,
    confirmation: &Confirmation,
    clerk: &str,
    today: NaiveDate,
) -> Result<Application, ApplicationError> {
    let mut db = db.into();
    if confirmation.confirmed_by.trim().is_empty() {
        return Err(ApplicationError::Invalid {
            field: "confirmed_by",
            message: "name the enterprise's person who confirmed".into(),
        });
    }
    if confirmation.confirmed_on > today {
        return Err(ApplicationError::Invalid {
            field: "confirmed_on",
            message: format!("{} is in the future", confirmation.confirmed_on),
        });
    }
    let paid_to = policy::job_stabilization::refund_account(
        confirmation.size_class,
        confirmation.corporate_account,
    )
    .map_err(|r| ApplicationError::Refused(vec![r]))?;
    let stream = application_stream(id);
    execute!(&mut db, ApplicationError, |a| {
        let events = a.read_stream(&stream).await?;
        let version = events.last().map_or(0, |e| e.stream_version);
        let mut app = fold_applications(&events)
            .by_id
            .remove(id)
            .ok_or_else(|| ApplicationError::NotFound(id.to_string()))?;
        let refused =
            |reason: String| ApplicationError::NotConfirmable { id: id.to_string(), reason };
        if !app.screened {
            return Err(refused("was applied for, not screened".into()));
        }
        if let Some(c) = &app.confirmation {
            return Err(refused(format!("was already confirmed on {}", c.confirmed_on)));
        }
        if app.status != Status::Submitted {
            return Err(refused(format!("is {}", app.status.as_str())));
        }
        if confirmation.confirmed_on < app.submitted_on {
            return Err(ApplicationError::Invalid {
                field: "confirmed_on",
                message: format!(
                    "{} is before the screening was recorded ({})",
                    confirmation.confirmed_on, app.submitted_on
                ),
            });
        }
        let size = serde_json::to_value(confirmation.size_class).expect("a size class");
        let e = ApplicationConfirmed {
            application: id.to_string(),
            confirmed_by: confirmation.confirmed_by.trim().to_string(),
            confirmed_on: confirmation.confirmed_on,
            size_class: size.as_str().unwrap_or_default().to_string(),
            corporate_account: confirmation.corporate_account,
            paid_to: paid_to.as_str().to_string(),
            recorded_by: clerk.to_string(),
        };
        let appending = Append {
            events: vec![new_event(
                &stream,
                &e,
                clerk,
                &app.pool,
                &app.county,
                vec![],
                confirmation.confirmed_on,
            )],
            expected: vec![(stream.clone(), ExpectedVersion::Exact(version))],
            condition: None,
        };
        app.confirmation = Some(projections::applications::Confirmation {
            confirmed_by: e.confirmed_by.clone(),
            confirmed_on: e.confirmed_on,
            paid_to: e.paid_to.clone(),
        });
        Ok(Decided::append(appending, app))
    })
}
