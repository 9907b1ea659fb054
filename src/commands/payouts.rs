//! From approval to money: public notice (公示), clearance, payout (拨付), settlement.
//!
//! No payout before the application's notice has closed; nothing is ever paid twice for one
//! application. Every step appends to the application's own stream with its expected
//! version, so of two concurrent payouts for one application exactly one is recorded.

use chrono::{Datelike, NaiveDate};
use events::application::{
    ApplicationCleared, ApplicationNoticed, ApplicationRejected, EnterpriseRecord, NoticeClosed,
    NoticeLine, NoticeOpened, ObjectionFiled, ObjectionResolved, PayoutFailed, PayoutIssued,
    PayoutSettled, RecoveryRecorded,
};
use events::batch::PayoutBatchIssued;
use events::DomainEvent;
use events::Tag;
use projections::applications::{Application, Status};

use super::applications::{application_stream, fold_applications, new_event};
use super::{execute, Attempt, CommandError, Decided};
use crate::publishing::policies_cached;
use crate::store::{Append, AppendError, ExpectedVersion, NewEvent};

/// Length of a public notice in working days (DOMAIN.md, Interpretation: 5 by default).
pub const NOTICE_WORKING_DAYS_DEFAULT: u32 = 5;
/// Most applications one notice or one payout batch may carry.
pub const BATCH_APPLICATIONS_MAX: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("application {id} is {status}; only approved applications of county {county} can be put on notice")]
    NotNoticeable { id: String, status: &'static str, county: String },
    #[error("the notice period runs until {ends_on} inclusive; close it from the next day on")]
    NoticePeriodNotEnded { ends_on: NaiveDate },
    #[error("notice {0} is already closed")]
    NoticeClosed(String),
    #[error("application {id} is {status}: it can be paid once its public notice has closed without an upheld objection")]
    NotCleared { id: String, status: &'static str },
    #[error("application {id} is already paid (payout {payout}); nothing is paid twice")]
    AlreadyPaid { id: String, payout: String },
    #[error("payout {payout} is already {status}")]
    PayoutNotOpen { payout: String, status: &'static str },
    #[error("the payout {payout} of application {id} failed; reissue it to a corrected account (POST /v1/payouts/{payout}/reissue)")]
    PayoutFailed { id: String, payout: String },
    #[error("payout {payout} is {status}; only the latest payout of an application, once failed, can be reissued")]
    NotReissuable { payout: String, status: &'static str },
    #[error(
        "starts_on: no holiday calendar in force covers {year}; the notice's working days \
         cannot be counted until the State Council's calendar for {year} is published"
    )]
    NoCalendar { year: i32 },
    #[error(
        "the objection period of notice {notice} runs from {starts_on} to {ends_on} and the \
         notice must still be open; an objection received on {received_on} (not in the future) \
         cannot be filed"
    )]
    ObjectionPeriodEnded {
        notice: String,
        starts_on: NaiveDate,
        ends_on: NaiveDate,
        received_on: NaiveDate,
    },
    #[error("application {id} is {status}, not on notice {notice}")]
    NotOnNotice { id: String, status: &'static str, notice: String },
    #[error("objection {0} is already resolved")]
    ObjectionResolved(String),
    #[error("application {id} is {status}; only a settled payout can be recovered")]
    NotRecoverable { id: String, status: &'static str },
    #[error(transparent)]
    PeriodSealed(#[from] super::periods::Sealed),
    #[error(transparent)]
    Batch(#[from] projections::batches::BatchRefusal),
    #[error(transparent)]
    Store(#[from] AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl PayoutError {
    pub fn code(&self) -> &'static str {
        match self {
            PayoutError::Invalid { .. } => "validation_failed",
            PayoutError::NotFound(_) => "not_found",
            PayoutError::NotNoticeable { .. } => "not_approved",
            PayoutError::NoticePeriodNotEnded { .. } => "notice_period_not_ended",
            PayoutError::NoticeClosed(_) => "notice_already_closed",
            PayoutError::NotCleared { .. } => "not_cleared",
            PayoutError::AlreadyPaid { .. } => "already_paid",
            PayoutError::PayoutNotOpen { .. } => "payout_already_settled",
            PayoutError::PayoutFailed { .. } => "payout_failed",
            PayoutError::NotReissuable { .. } => "payout_not_failed",
            PayoutError::ObjectionPeriodEnded { .. } => "objection_period_ended",
            PayoutError::NoCalendar { .. } => "no_policy_in_force",
            PayoutError::NotOnNotice { .. } => "not_on_notice",
            PayoutError::ObjectionResolved(_) => "objection_already_resolved",
            PayoutError::NotRecoverable { .. } => "not_recoverable",
            PayoutError::PeriodSealed(_) => "period_sealed",
            PayoutError::Batch(r) => r.code(),
            PayoutError::Store(_) | PayoutError::Database(_) => "internal",
        }
    }
}

fn distinct_ids(field: &'static str, ids: &[String]) -> Result<Vec<String>, PayoutError> {
    if ids.is_empty() || ids.len() > BATCH_APPLICATIONS_MAX {
        return Err(PayoutError::Invalid {
            field,
            message: format!("give between 1 and {BATCH_APPLICATIONS_MAX} application ids"),
        });
    }
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != ids.len() {
        return Err(PayoutError::Invalid {
            field,
            message: "an application id is listed twice".into(),
        });
    }
    Ok(ids.to_vec())
}

/// Reads applications with their stream versions; `NotFound` names the first missing one.
pub(crate) async fn read_applications(
    a: &mut Attempt<'_>,
    ids: &[String],
) -> Result<Vec<(Application, i64)>, PayoutError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let events = a.read_stream(&application_stream(id)).await?;
        let version = events.last().map_or(0, |e| e.stream_version);
        let app = fold_applications(&events)
            .by_id
            .remove(id)
            .ok_or_else(|| PayoutError::NotFound(format!("application {id}")))?;
        out.push((app, version));
    }
    Ok(out)
}

/// A payout as first issued, with its application and the application stream's version.
pub(crate) async fn read_payout(
    a: &mut Attempt<'_>,
    payout: &str,
) -> Result<(PayoutIssued, Application, i64), PayoutError> {
    let found = a.read_tagged(&[payout_tag(payout)]).await?;
    let issued: PayoutIssued = found
        .events
        .iter()
        .find(|e| e.event_type == PayoutIssued::TYPE)
        .map(|e| serde_json::from_value(e.data.clone()).expect("a recorded payout"))
        .ok_or_else(|| PayoutError::NotFound(format!("payout {payout}")))?;
    let (app, version) =
        read_applications(a, std::slice::from_ref(&issued.application)).await?.remove(0);
    Ok((issued, app, version))
}

impl CommandError for PayoutError {
    fn store(&self) -> Option<&AppendError> {
        match self {
            PayoutError::Store(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub id: String,
    pub ends_on: NaiveDate,
    pub lines: Vec<NoticeLine>,
}

/// Opens a public notice for approved applications of one county.
pub async fn open_notice(
    db: impl Into<super::Db<'_>>,
    county: &str,
    starts_on: NaiveDate,
    application_ids: &[String],
    clerk: &str,
    today: NaiveDate,
) -> Result<Notice, PayoutError> {
    let mut db = db.into();
    if starts_on > today {
        return Err(PayoutError::Invalid {
            field: "starts_on",
            message: format!("{starts_on} is in the future"),
        });
    }
    let ids = distinct_ids("application_ids", application_ids)?;
    let id = uuid::Uuid::now_v7().to_string();
    let database = db.database().to_string();
    let stream = format!("notice-{id}");
    execute!(&mut db, PayoutError, |a| {
        let apps = read_applications(a, &ids).await?;
        let mut lines = Vec::new();
        let mut events: Vec<NewEvent> = Vec::new();
        let mut expected = vec![(stream.clone(), ExpectedVersion::NoStream)];
        let mut pool = String::new();
        // The pool's notice length (a setting per pool, DOMAIN.md), from its stream.
        let working_days = match apps.first() {
            Some((first, _)) => {
                let code = policy::DivisionCode::parse(&first.pool).expect("a recorded pool code");
                super::setup::read_pool(a, &code)
                    .await
                    .map_err(|e| match e {
                        super::setup::SetupError::Database(e) => PayoutError::Database(e),
                        other => {
                            PayoutError::Invalid { field: "county", message: other.to_string() }
                        }
                    })?
                    .0
                    .and_then(|p| p.notice_working_days)
                    .unwrap_or(NOTICE_WORKING_DAYS_DEFAULT)
            }
            None => NOTICE_WORKING_DAYS_DEFAULT,
        };
        // Working days as the State Council's calendar in force counts them.
        let pool_code = apps
            .first()
            .map(|(a, _)| policy::DivisionCode::parse(&a.pool).expect("a recorded pool code"));
        let policies = policies_cached(a.conn(), &database).await?;
        let no_calendar = |year| PayoutError::NoCalendar { year };
        let calendar = pool_code
            .and_then(|p| {
                policy::select(&policies, policy::Program::HolidayCalendar, p, starts_on).ok()
            })
            .ok_or(no_calendar(starts_on.year()))?;
        let policy::Rules::HolidayCalendar(days) = &calendar.rules else {
            unreachable!("select returns a policy of the program asked for")
        };
        let ends_on = days.ends_on(starts_on, working_days).map_err(|e| no_calendar(e.year))?;
        for (app, version) in &apps {
            if app.status != Status::Approved || app.county != county {
                return Err(PayoutError::NotNoticeable {
                    id: app.id.clone(),
                    status: app.status.as_str(),
                    county: county.to_string(),
                });
            }
            pool = app.pool.clone();
            lines.push(NoticeLine {
                application: app.id.clone(),
                name_masked: app.display_name.clone(),
                id_number_masked: app.display_id.clone(),
                program: app.program.clone(),
                amount: app.amount,
                // Paid per payee: the notice shows each part, the company's own by its name.
                payees: app
                    .lines
                    .iter()
                    .map(|l| events::application::LineRecord {
                        payee: Some(l.payee.clone().unwrap_or_else(|| {
                            events::application::EnterpriseRecord {
                                credit_code: app.display_id.clone(),
                                name: app.display_name.clone(),
                            }
                        })),
                        ..l.clone()
                    })
                    .collect(),
            });
            let noticed =
                ApplicationNoticed { application: app.id.clone(), notice: id.clone(), ends_on };
            let app_stream = application_stream(&app.id);
            events.push(new_event(
                &app_stream,
                &noticed,
                clerk,
                &app.pool,
                county,
                vec![],
                starts_on,
            ));
            expected.push((app_stream, ExpectedVersion::Exact(*version)));
        }
        let opened = NoticeOpened {
            notice: id.clone(),
            county: county.to_string(),
            pool: pool.clone(),
            starts_on,
            ends_on,
            working_days,
            calendar: Some(calendar.id.to_string()),
            lines: lines.clone(),
            opened_by: clerk.to_string(),
        };
        events.insert(0, new_event(&stream, &opened, clerk, &pool, county, vec![], starts_on));
        let notice = Notice { id: id.clone(), ends_on, lines };
        Ok(Decided::append(Append { events, expected, condition: None }, notice))
    })
}

/// Closes a notice whose period has ended, clearing its applications for payout.
pub async fn close_notice(
    db: impl Into<super::Db<'_>>,
    notice_id: &str,
    clerk: &str,
    today: NaiveDate,
) -> Result<Vec<String>, PayoutError> {
    let mut db = db.into();
    let stream = format!("notice-{notice_id}");
    execute!(&mut db, PayoutError, |a| {
        let notice_events = a.read_stream(&stream).await?;
        let version = notice_events.last().map_or(0, |e| e.stream_version);
        let opened: NoticeOpened = notice_events
            .iter()
            .find(|e| e.event_type == "NoticeOpened")
            .map(|e| serde_json::from_value(e.data.clone()).expect("a recorded notice"))
            .ok_or_else(|| PayoutError::NotFound(format!("notice {notice_id}")))?;
        if notice_events.iter().any(|e| e.event_type == "NoticeClosed") {
            return Err(PayoutError::NoticeClosed(notice_id.to_string()));
        }
        if today <= opened.ends_on {
            return Err(PayoutError::NoticePeriodNotEnded { ends_on: opened.ends_on });
        }
        let ids: Vec<String> = opened.lines.iter().map(|l| l.application.clone()).collect();
        let apps = read_applications(a, &ids).await?;
        let mut cleared = Vec::new();
        let mut events = Vec::new();
        let mut expected = vec![(stream.clone(), ExpectedVersion::Exact(version))];
        for (app, v) in &apps {
            // Withdrawn or rejected meanwhile (an upheld objection): not cleared.
            // An open objection holds the application until it is resolved.
            if app.status == Status::InNotice
                && app.notice.as_deref() == Some(notice_id)
                && app.open_objections.is_empty()
            {
                let e = ApplicationCleared {
                    application: app.id.clone(),
                    notice: notice_id.to_string(),
                    cleared_on: today,
                };
                let app_stream = application_stream(&app.id);
                events.push(new_event(
                    &app_stream,
                    &e,
                    clerk,
                    &app.pool,
                    &app.county,
                    vec![],
                    today,
                ));
                expected.push((app_stream, ExpectedVersion::Exact(*v)));
                cleared.push(app.id.clone());
            }
        }
        let closed = NoticeClosed {
            notice: notice_id.to_string(),
            closed_on: today,
            cleared: cleared.clone(),
            closed_by: clerk.to_string(),
        };
        events.insert(
            0,
            new_event(&stream, &closed, clerk, &opened.pool, &opened.county, vec![], today),
        );
        Ok(Decided::append(Append { events, expected, condition: None }, cleared))
    })
}

pub(crate) fn payout_tag(payout: &str) -> Tag {
    Tag::parse(&format!("payout:{payout}")).expect("payout ids are uuids")
}

/// Issues one payout per application, all or none. Returns the payout ids in order.
pub async fn issue_payouts(
    db: impl Into<super::Db<'_>>,
    application_ids: &[String],
    paid_on: NaiveDate,
    actor: &str,
    today: NaiveDate,
) -> Result<Vec<String>, PayoutError> {
    issue_payouts_to(db, application_ids, paid_on, actor, today)
        .await
        .map(|issued| issued.into_iter().map(|p| p.id).collect())
}

/// A payout as issued: whom it pays and how much (API.md: every payout carries `payee` and
/// `amount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedPayout {
    pub id: String,
    /// The payout batch (支付批次): one per pool of the request.
    pub batch: String,
    pub application: String,
    pub amount: rust_decimal::Decimal,
    pub payee: Payee,
}

/// Who a payout pays, as answers show it: an enterprise by credit code and name (public), a
/// person by masked ID number and masked name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payee {
    Unit { credit_code: String, name: String },
    Person { id_number_masked: String, name_masked: String },
}

impl Payee {
    fn of(app: &Application) -> Payee {
        if let Some((credit_code, name)) = &app.payee {
            return Payee::Unit { credit_code: credit_code.clone(), name: name.clone() };
        }
        match app.party.strip_prefix("enterprise:") {
            Some(code) => {
                Payee::Unit { credit_code: code.to_string(), name: app.display_name.clone() }
            }
            None => Payee::Person {
                id_number_masked: app.display_id.clone(),
                name_masked: app.display_name.clone(),
            },
        }
    }
}

/// [`issue_payouts`], answering each payout's payee and amount.
pub async fn issue_payouts_to(
    db: impl Into<super::Db<'_>>,
    application_ids: &[String],
    paid_on: NaiveDate,
    actor: &str,
    today: NaiveDate,
) -> Result<Vec<IssuedPayout>, PayoutError> {
    let mut db = db.into();
    if paid_on > today {
        return Err(PayoutError::Invalid {
            field: "paid_on",
            message: format!("{paid_on} is in the future"),
        });
    }
    let ids = distinct_ids("application_ids", application_ids)?;
    // One batch per pool the applications belong to (a bureau's request has one); its id is
    // fixed before the first attempt, so a retry records the same batch.
    let mut batch_ids: std::collections::BTreeMap<String, String> = Default::default();
    execute!(&mut db, PayoutError, |a| {
        let apps = read_applications(a, &ids).await?;
        let postings: Vec<(String, NaiveDate)> =
            apps.iter().map(|(app, _)| (app.pool.clone(), paid_on)).collect();
        let condition = super::periods::open_periods(a, &postings).await??;
        let mut events = Vec::new();
        let mut expected = Vec::new();
        let mut issued = Vec::new();
        for (app, version) in &apps {
            match app.status {
                Status::Cleared => {}
                Status::PayoutIssued | Status::Settled => {
                    return Err(PayoutError::AlreadyPaid {
                        id: app.id.clone(),
                        payout: app.payouts.last().cloned().unwrap_or_default(),
                    })
                }
                Status::PayoutFailed => {
                    return Err(PayoutError::PayoutFailed {
                        id: app.id.clone(),
                        payout: app.payouts.last().cloned().unwrap_or_default(),
                    })
                }
                other => {
                    return Err(PayoutError::NotCleared {
                        id: app.id.clone(),
                        status: other.as_str(),
                    })
                }
            }
            let counts = app.funding == policy::Funding::ExpansionPilot.as_str();
            // One payout per line with money where the application is paid per payee (a
            // labour-dispatch refund: each host employer, and the company for its own staff);
            // one payout of the whole amount otherwise. All of them are appended at the
            // application's expected version, so of concurrent requests exactly one pays
            // them, and a line is never paid twice.
            let batch = batch_ids
                .entry(app.pool.clone())
                .or_insert_with(|| uuid::Uuid::now_v7().to_string())
                .clone();
            let parts: Vec<(Option<u32>, rust_decimal::Decimal, Option<EnterpriseRecord>)> =
                if app.lines.is_empty() {
                    vec![(None, app.amount, None)]
                } else {
                    app.payable_lines().map(|(i, l)| (Some(i), l.amount, l.payee.clone())).collect()
                };
            for (line, amount, payee) in parts {
                let payout = uuid::Uuid::now_v7().to_string();
                let mut tags = vec![payout_tag(&payout), super::batches::batch_tag(&batch)];
                if counts {
                    tags.push(Tag::pool_year(&app.pool, app.year));
                }
                issued.push(IssuedPayout {
                    id: payout.clone(),
                    batch: batch.clone(),
                    application: app.id.clone(),
                    amount,
                    payee: match &payee {
                        Some(p) => {
                            Payee::Unit { credit_code: p.credit_code.clone(), name: p.name.clone() }
                        }
                        None => Payee::of(app),
                    },
                });
                let e = PayoutIssued {
                    payout,
                    application: app.id.clone(),
                    pool: app.pool.clone(),
                    year: app.year,
                    amount,
                    counts_against_quota: counts,
                    paid_on,
                    issued_by: actor.to_string(),
                    reissue_of: None,
                    account: None,
                    line,
                    payee,
                    batch: Some(batch.clone()),
                };
                let app_stream = application_stream(&app.id);
                events.push(new_event(
                    &app_stream,
                    &e,
                    actor,
                    &app.pool,
                    &app.county,
                    tags,
                    paid_on,
                ));
            }
            expected.push((application_stream(&app.id), ExpectedVersion::Exact(*version)));
        }
        // Each batch: its own stream, listing its payouts (issued in the same append).
        for (pool, batch) in &batch_ids {
            let in_batch: Vec<&IssuedPayout> =
                issued.iter().filter(|p: &&IssuedPayout| &p.batch == batch).collect();
            if in_batch.is_empty() {
                continue;
            }
            let e = PayoutBatchIssued {
                batch: batch.clone(),
                pool: pool.clone(),
                payouts: in_batch.iter().map(|p| p.id.clone()).collect(),
                amount: in_batch.iter().map(|p| p.amount).sum(),
                issued_on: paid_on,
                issued_by: actor.to_string(),
            };
            let stream = super::batches::batch_stream(batch);
            let tag = super::batches::batch_tag(batch);
            events.push(super::batches::batch_event(&stream, &e, actor, pool, tag, paid_on));
            expected.push((stream, ExpectedVersion::NoStream));
        }
        Ok(Decided::append(Append { events, expected, condition: Some(condition) }, issued))
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Settled { bank_reference: String },
    Failed { reason: String },
}

/// Records the bank's result for a payout, dated today.
pub async fn settle(
    db: impl Into<super::Db<'_>>,
    payout: &str,
    settlement: &Settlement,
    actor: &str,
    today: NaiveDate,
) -> Result<(), PayoutError> {
    let mut db = db.into();
    settle_dated(&mut db, payout, settlement, today, actor, today).await
}

/// Records the bank's result for a payout as of `on` (the bank's date, e.g. from its result
/// file), not in the future and not in a sealed month.
pub async fn settle_dated(
    db: &mut super::Db<'_>,
    payout: &str,
    settlement: &Settlement,
    on: NaiveDate,
    actor: &str,
    today: NaiveDate,
) -> Result<(), PayoutError> {
    let (field, text) = match settlement {
        Settlement::Settled { bank_reference } => ("bank_reference", bank_reference),
        Settlement::Failed { reason } => ("reason", reason),
    };
    if text.trim().is_empty() {
        return Err(PayoutError::Invalid { field, message: "must not be empty".into() });
    }
    if on > today {
        return Err(PayoutError::Invalid {
            field: "settled_on",
            message: format!("{on} is in the future"),
        });
    }
    execute!(db, PayoutError, |a| {
        let (issued, app, version) = read_payout(a, payout).await?;
        if !app.current_payout_is(payout, Status::PayoutIssued) {
            return Err(PayoutError::PayoutNotOpen {
                payout: payout.to_string(),
                status: app.status.as_str(),
            });
        }
        let condition = super::periods::open_periods(a, &[(app.pool.clone(), on)]).await??;
        let appending = Append {
            events: vec![settlement_event(&app, &issued, settlement, on, actor)],
            expected: vec![(application_stream(&app.id), ExpectedVersion::Exact(version))],
            condition: Some(condition),
        };
        Ok(Decided::append(appending, ()))
    })
}

/// `PayoutSettled` or `PayoutFailed` for a payout of `app`, dated `on`.
pub(crate) fn settlement_event(
    app: &Application,
    issued: &PayoutIssued,
    settlement: &Settlement,
    on: NaiveDate,
    actor: &str,
) -> NewEvent {
    let payout = issued.payout.as_str();
    let stream = application_stream(&app.id);
    // The answer carries its batch's tag: the batch's state is what that tag holds.
    let mut tags = vec![payout_tag(payout)];
    tags.extend(issued.batch.as_deref().map(super::batches::batch_tag));
    match settlement {
        Settlement::Settled { bank_reference } => {
            let e = PayoutSettled {
                payout: payout.to_string(),
                application: app.id.clone(),
                bank_reference: bank_reference.trim().to_string(),
                settled_on: on,
            };
            new_event(&stream, &e, actor, &app.pool, &app.county, tags, on)
        }
        Settlement::Failed { reason } => {
            let e = PayoutFailed {
                payout: payout.to_string(),
                application: app.id.clone(),
                reason: reason.trim().to_string(),
                failed_on: on,
            };
            new_event(&stream, &e, actor, &app.pool, &app.county, tags, on)
        }
    }
}

/// A corrected bank account for a reissue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccount {
    pub bank: String,
    pub number: String,
}

impl BankAccount {
    /// Only the last four digits show (`****1234`).
    pub fn masked(&self) -> String {
        let digits: Vec<char> = self.number.chars().filter(|c| !c.is_whitespace()).collect();
        let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
        format!("****{tail}")
    }

    fn check(&self) -> Result<(), PayoutError> {
        if self.bank.trim().is_empty() {
            return Err(PayoutError::Invalid {
                field: "account.bank",
                message: "name the bank (开户行)".into(),
            });
        }
        let digits: Vec<char> = self.number.chars().filter(|c| !c.is_whitespace()).collect();
        if !(8..=32).contains(&digits.len()) || !digits.iter().all(char::is_ascii_digit) {
            return Err(PayoutError::Invalid {
                field: "account.number",
                message: "an account number is 8 to 32 digits".into(),
            });
        }
        Ok(())
    }
}

/// Reissues a failed payout to a corrected account (重新支付): a new payout of the same
/// amount, recorded as a `PayoutIssued` naming the one it replaces. The quota is untouched:
/// the money moved from committed to paid with the first payout and never came back.
pub async fn reissue_payout(
    db: impl Into<super::Db<'_>>,
    keys: &crate::personal::Keys,
    failed: &str,
    account: &BankAccount,
    paid_on: NaiveDate,
    actor: &str,
    today: NaiveDate,
) -> Result<String, PayoutError> {
    let mut db = db.into();
    account.check()?;
    if paid_on > today {
        return Err(PayoutError::Invalid {
            field: "paid_on",
            message: format!("{paid_on} is in the future"),
        });
    }
    let payout = uuid::Uuid::now_v7().to_string();
    let number: String = account.number.chars().filter(|c| !c.is_whitespace()).collect();
    // Bound to the new payout: a sealed account copied to another payout does not open.
    let record_of = format!("payout-{payout}");
    execute!(&mut db, PayoutError, |a| {
        let (issued, app, version) = read_payout(a, failed).await?;
        if !app.current_payout_is(failed, Status::PayoutFailed) {
            return Err(PayoutError::NotReissuable {
                payout: failed.to_string(),
                status: app.status.as_str(),
            });
        }
        let mut condition =
            super::periods::open_periods(a, &[(app.pool.clone(), paid_on)]).await??;
        // A person's own account is theirs to have erased: sealed under their data key, read
        // after the condition's read point, with the person's tag in the condition (an
        // erasure recorded meanwhile makes this attempt read again). An enterprise's or an
        // institution's account stays under the master key.
        let person = app
            .party
            .strip_prefix("person:")
            .filter(|_| issued.payee.is_none() && app.payee.is_none());
        let number_sealed = match person {
            Some(person) => {
                condition.tags.push(app.party_tag());
                let data_keys = a.data_keys(keys, &[person]).await?;
                data_keys.of(person).seal(crate::personal::Field::BankAccount, &record_of, &number)
            }
            None => crate::personal::Sealed::seal_bound(
                keys,
                crate::personal::Field::BankAccount,
                &record_of,
                &number,
            ),
        };
        let record = events::application::AccountRecord {
            bank: account.bank.trim().to_string(),
            number_sealed: number_sealed.as_str().to_string(),
            number_masked: account.masked(),
            number_key: Some(crate::personal::account_key(keys, &number)),
        };
        let e = PayoutIssued {
            payout: payout.clone(),
            application: app.id.clone(),
            pool: app.pool.clone(),
            year: app.year,
            amount: issued.amount,
            counts_against_quota: issued.counts_against_quota,
            paid_on,
            issued_by: actor.to_string(),
            reissue_of: Some(failed.to_string()),
            account: Some(record.clone()),
            // The same line, to the same payee, at a corrected account.
            line: issued.line,
            payee: issued.payee.clone(),
            batch: None,
        };
        let stream = application_stream(&app.id);
        let appending = Append {
            events: vec![new_event(
                &stream,
                &e,
                actor,
                &app.pool,
                &app.county,
                vec![payout_tag(&payout), payout_tag(failed)],
                paid_on,
            )],
            expected: vec![(stream, ExpectedVersion::Exact(version))],
            condition: Some(condition),
        };
        Ok(Decided::append(appending, payout.clone()))
    })
}

fn objection_tag(objection: &str) -> Tag {
    Tag::parse(&format!("objection:{objection}")).expect("objection ids are uuids")
}

async fn read_notice(
    a: &mut Attempt<'_>,
    notice_id: &str,
) -> Result<(NoticeOpened, bool), PayoutError> {
    let events = a.read_stream(&format!("notice-{notice_id}")).await?;
    let opened: NoticeOpened = events
        .iter()
        .find(|e| e.event_type == "NoticeOpened")
        .map(|e| serde_json::from_value(e.data.clone()).expect("a recorded notice"))
        .ok_or_else(|| PayoutError::NotFound(format!("notice {notice_id}")))?;
    Ok((opened, events.iter().any(|e| e.event_type == "NoticeClosed")))
}

/// Files an objection (异议) against an application on notice, during the notice period.
pub async fn file_objection(
    db: impl Into<super::Db<'_>>,
    notice_id: &str,
    application_id: &str,
    summary: &str,
    actor: &str,
    today: NaiveDate,
) -> Result<String, PayoutError> {
    file_objection_received(db, notice_id, application_id, summary, None, actor, today).await
}

/// Files an objection received on `received_on` (default: today), e.g. on paper during the
/// period and entered later. The day it was received must lie within the notice period and
/// not in the future; the notice must still be open.
pub async fn file_objection_received(
    db: impl Into<super::Db<'_>>,
    notice_id: &str,
    application_id: &str,
    summary: &str,
    received_on: Option<NaiveDate>,
    actor: &str,
    today: NaiveDate,
) -> Result<String, PayoutError> {
    let mut db = db.into();
    let received_on = received_on.unwrap_or(today);
    if summary.trim().is_empty() {
        return Err(PayoutError::Invalid {
            field: "summary",
            message: "say what the objection is".into(),
        });
    }
    let objection = uuid::Uuid::now_v7().to_string();
    execute!(&mut db, PayoutError, |a| {
        let (opened, closed) = read_notice(a, notice_id).await?;
        let within = opened.starts_on <= received_on && received_on <= opened.ends_on;
        if closed || !within || received_on > today {
            return Err(PayoutError::ObjectionPeriodEnded {
                notice: notice_id.to_string(),
                starts_on: opened.starts_on,
                ends_on: opened.ends_on,
                received_on,
            });
        }
        let (app, version) = read_applications(a, &[application_id.to_string()]).await?.remove(0);
        if app.status != Status::InNotice || app.notice.as_deref() != Some(notice_id) {
            return Err(PayoutError::NotOnNotice {
                id: app.id.clone(),
                status: app.status.as_str(),
                notice: notice_id.to_string(),
            });
        }
        let e = ObjectionFiled {
            objection: objection.clone(),
            notice: notice_id.to_string(),
            application: app.id.clone(),
            summary: summary.trim().to_string(),
            filed_on: today,
            received_on: Some(received_on).filter(|&r| r != today),
        };
        let stream = application_stream(&app.id);
        let appending = Append {
            events: vec![new_event(
                &stream,
                &e,
                actor,
                &app.pool,
                &app.county,
                vec![objection_tag(&objection)],
                today,
            )],
            expected: vec![(stream, ExpectedVersion::Exact(version))],
            condition: None,
        };
        Ok(Decided::append(appending, objection.clone()))
    })
}

/// Resolves an objection. Upheld: the application is rejected (its quota and slot freed).
/// Not upheld: the application goes on, and is cleared if its notice has already closed.
pub async fn resolve_objection(
    db: impl Into<super::Db<'_>>,
    objection: &str,
    upheld: bool,
    note: &str,
    reviewer: &str,
    today: NaiveDate,
) -> Result<Status, PayoutError> {
    let mut db = db.into();
    if note.trim().is_empty() {
        return Err(PayoutError::Invalid {
            field: "note",
            message: "say how the objection was resolved".into(),
        });
    }
    execute!(&mut db, PayoutError, |a| {
        let found = a.read_tagged(&[objection_tag(objection)]).await?;
        let filed: ObjectionFiled = found
            .events
            .iter()
            .find(|e| e.event_type == ObjectionFiled::TYPE)
            .map(|e| serde_json::from_value(e.data.clone()).expect("a recorded objection"))
            .ok_or_else(|| PayoutError::NotFound(format!("objection {objection}")))?;
        let (app, version) =
            read_applications(a, std::slice::from_ref(&filed.application)).await?.remove(0);
        if !app.open_objections.iter().any(|o| o == objection) {
            return Err(PayoutError::ObjectionResolved(objection.to_string()));
        }
        let stream = application_stream(&app.id);
        let resolved = ObjectionResolved {
            objection: objection.to_string(),
            application: app.id.clone(),
            upheld,
            note: note.trim().to_string(),
            resolved_by: reviewer.to_string(),
            resolved_on: today,
        };
        let mut events = vec![new_event(
            &stream,
            &resolved,
            reviewer,
            &app.pool,
            &app.county,
            vec![objection_tag(objection)],
            today,
        )];
        let status = if upheld {
            let mut tags = vec![app.party_tag()];
            if app.funding == policy::Funding::ExpansionPilot.as_str() {
                tags.push(Tag::pool_year(&app.pool, app.year));
            }
            let rejected = ApplicationRejected {
                application: app.id.clone(),
                reasons: vec![format!("objection upheld: {}", note.trim())],
                reviewer: reviewer.to_string(),
                rejected_on: today,
            };
            events.push(new_event(
                &stream,
                &rejected,
                reviewer,
                &app.pool,
                &app.county,
                tags,
                today,
            ));
            Status::Rejected
        } else {
            let (_, closed) = read_notice(a, &filed.notice).await?;
            let others_open = app.open_objections.iter().any(|o| o != objection);
            if closed && !others_open && app.status == Status::InNotice {
                let cleared = ApplicationCleared {
                    application: app.id.clone(),
                    notice: filed.notice.clone(),
                    cleared_on: today,
                };
                events.push(new_event(
                    &stream,
                    &cleared,
                    reviewer,
                    &app.pool,
                    &app.county,
                    vec![],
                    today,
                ));
                Status::Cleared
            } else {
                app.status
            }
        };
        let appending = Append {
            events,
            expected: vec![(stream, ExpectedVersion::Exact(version))],
            condition: None,
        };
        Ok(Decided::append(appending, status))
    })
}

/// Records money recovered (追回) from a settled payout. Frees quota money, and once the whole
/// amount is back the application no longer takes an annual slot.
pub async fn record_recovery(
    db: impl Into<super::Db<'_>>,
    application_id: &str,
    amount: policy::Money,
    reason: &str,
    actor: &str,
    today: NaiveDate,
) -> Result<String, PayoutError> {
    record_recovery_dated(db, application_id, amount, reason, today, actor, today).await
}

/// Records a recovery as of `on` (the day the money came back; not in the future, not in a
/// sealed month).
pub async fn record_recovery_dated(
    db: impl Into<super::Db<'_>>,
    application_id: &str,
    amount: policy::Money,
    reason: &str,
    on: NaiveDate,
    actor: &str,
    today: NaiveDate,
) -> Result<String, PayoutError> {
    let mut db = db.into();
    if on > today {
        return Err(PayoutError::Invalid {
            field: "recovered_on",
            message: format!("{on} is in the future"),
        });
    }
    let today = on;
    if reason.trim().is_empty() {
        return Err(PayoutError::Invalid {
            field: "reason",
            message: "say why the money is recovered".into(),
        });
    }
    let recovery = uuid::Uuid::now_v7().to_string();
    execute!(&mut db, PayoutError, |a| {
        let (app, version) = read_applications(a, &[application_id.to_string()]).await?.remove(0);
        if app.status != Status::Settled {
            return Err(PayoutError::NotRecoverable {
                id: app.id.clone(),
                status: app.status.as_str(),
            });
        }
        let outstanding = app.amount - app.recovered;
        if amount.value() > outstanding {
            return Err(PayoutError::Invalid {
                field: "amount",
                message: format!(
                    "{} is more than the {outstanding} paid and not yet recovered",
                    amount.value()
                ),
            });
        }
        let condition = super::periods::open_periods(a, &[(app.pool.clone(), today)]).await??;
        let counts = app.funding == policy::Funding::ExpansionPilot.as_str();
        let mut tags = vec![app.party_tag()];
        if counts {
            tags.push(Tag::pool_year(&app.pool, app.year));
        }
        let e = RecoveryRecorded {
            recovery: recovery.clone(),
            application: app.id.clone(),
            pool: app.pool.clone(),
            year: app.year,
            amount: amount.value(),
            counts_against_quota: counts,
            reason: reason.trim().to_string(),
            recovered_on: today,
            recorded_by: actor.to_string(),
        };
        let stream = application_stream(&app.id);
        let appending = Append {
            events: vec![new_event(&stream, &e, actor, &app.pool, &app.county, tags, today)],
            expected: vec![(stream, ExpectedVersion::Exact(version))],
            condition: Some(condition),
        };
        Ok(Decided::append(appending, recovery.clone()))
    })
}
