//! Applications: status, amount, policy, and each person's history across years.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{
    ApplicationApproved, ApplicationCleared, ApplicationConfirmed, ApplicationNoticed,
    ApplicationRejected, ApplicationSubmitted, ApplicationWithdrawn, LineRecord, ObjectionFiled,
    ObjectionResolved, PayoutFailed, PayoutIssued, PayoutSettled, RecoveryRecorded,
};
use events::person::PersonErased;
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::{decode, ProjectionError};

/// What views show instead of a person's name, ID number or account once the person was
/// erased (`PersonErased`): 已删除, "erased".
pub const ERASED: &str = "已删除";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Submitted,
    Approved,
    /// In a public notice (公示) whose period has not been closed.
    InNotice,
    /// Passed its notice; may be paid.
    Cleared,
    /// A payout is issued, not yet settled.
    PayoutIssued,
    Settled,
    /// The last payout failed; it may be reissued.
    PayoutFailed,
    /// Paid, and the whole amount recovered: frees its annual slot.
    Recovered,
    Rejected,
    Withdrawn,
}

impl Status {
    /// The status named `s` (as [`Status::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Approved => "approved",
            Status::InNotice => "in_notice",
            Status::Cleared => "cleared",
            Status::PayoutIssued => "payout_issued",
            Status::Settled => "settled",
            Status::PayoutFailed => "payout_failed",
            Status::Recovered => "recovered",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// Whether the application still stands in a party's history: it holds its annual slot
    /// and blocks a repeat of the same occupation and level. The policy's `Status::stands`
    /// of the status `commands::applications` maps this one to.
    pub fn stands(self) -> bool {
        !matches!(self, Status::Recovered | Status::Rejected | Status::Withdrawn)
    }

    pub const ALL: [Status; 10] = [
        Status::Submitted,
        Status::Approved,
        Status::InNotice,
        Status::Cleared,
        Status::PayoutIssued,
        Status::Settled,
        Status::PayoutFailed,
        Status::Recovered,
        Status::Rejected,
        Status::Withdrawn,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: String,
    pub program: String,
    pub county: String,
    pub pool: String,
    pub year: i32,
    pub submitted_on: NaiveDate,
    pub submitted_by: String,
    /// The tag of the party paid: `person:<key>` or `enterprise:<credit code>`.
    pub party: String,
    /// As lists and notices show it: a person's masked name, or the enterprise's name.
    pub display_name: String,
    /// A person's masked ID number, or the enterprise's credit code.
    pub display_id: String,
    pub subject: String,
    pub level: Option<u8>,
    pub amount: Decimal,
    pub funding: String,
    pub policy: String,
    pub slot: Option<(String, i32, u32)>,
    pub status: Status,
    pub notice: Option<String>,
    /// Payouts issued, in order; the last one is the current one.
    pub payouts: Vec<String>,
    /// Objections filed and not yet resolved: they hold the application.
    pub open_objections: Vec<String>,
    pub recovered: Decimal,
    /// Who the payouts go to when not the party: `(credit code, name)` of a training
    /// institution paid on a trainee's behalf.
    pub payee: Option<(String, String)>,
    /// Money issued to the party and not returned by the bank: issued payouts less failed
    /// ones. Recovered money is counted apart, in `recovered`.
    pub paid: Decimal,
    /// The decision's parts by payee, where it is paid per payee (a labour-dispatch refund);
    /// empty when the whole amount is one payout.
    pub lines: Vec<LineRecord>,
    /// Every payout issued, by id: the line it pays and what became of it.
    pub payout_states: BTreeMap<String, PayoutState>,
    /// 免申即享: screened by the office; reviewed only once `confirmation` is recorded.
    pub screened: bool,
    pub confirmation: Option<Confirmation>,
    /// Its person was erased after it was submitted (`PersonErased`): the display fields
    /// show [`ERASED`].
    pub erased: bool,
}

/// An enterprise's confirmation of a screened refund (免申即享).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub confirmed_by: String,
    pub confirmed_on: NaiveDate,
    /// `corporate` or `social_insurance`.
    pub paid_to: String,
}

/// One payout of an application, as the application's state needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutState {
    /// The decision line it pays, for an application paid per payee.
    pub line: Option<u32>,
    /// `PayoutIssued`, `Settled` or `PayoutFailed`.
    pub status: Status,
    /// A reissue replaced it: it is no longer current.
    pub replaced: bool,
}

impl Application {
    /// Whether `payout` is a current payout of this application (not replaced by a reissue)
    /// in `status` (`PayoutIssued`, `Settled` or `PayoutFailed`): only a current payout can
    /// be settled, failed or reissued. An application paid per payee has one current payout
    /// per line; any other has one.
    pub fn current_payout_is(&self, payout: &str, status: Status) -> bool {
        self.status != Status::Recovered
            && self.payout_states.get(payout).is_some_and(|p| !p.replaced && p.status == status)
    }

    /// The lines to pay, one payout each: `(index, line)` of every line with money. Empty
    /// when the application is paid as one payout.
    pub fn payable_lines(&self) -> impl Iterator<Item = (u32, &LineRecord)> + '_ {
        (0u32..).zip(&self.lines).filter(|(_, l)| l.amount > Decimal::ZERO)
    }

    /// The status its current payouts give it: failed if any failed (it waits for a
    /// reissue), settled once all are settled, issued otherwise.
    fn status_of_payouts(&self) -> Status {
        let current = || self.payout_states.values().filter(|p| !p.replaced);
        if current().any(|p| p.status == Status::PayoutFailed) {
            Status::PayoutFailed
        } else if current().all(|p| p.status == Status::Settled) {
            Status::Settled
        } else {
            Status::PayoutIssued
        }
    }

    /// The tag of the party paid, which every event of the application carries.
    pub fn party_tag(&self) -> events::Tag {
        events::Tag::parse(&self.party).expect("a recorded party tag")
    }

    /// The application as `application_status` stores it.
    pub fn status_row(&self) -> StatusRow {
        StatusRow {
            application: self.id.clone(),
            program: self.program.clone(),
            county: self.county.clone(),
            pool: self.pool.clone(),
            year: self.year,
            party: self.party.clone(),
            display_name: self.display_name.clone(),
            display_id: self.display_id.clone(),
            subject: self.subject.clone(),
            level: self.level.map(i32::from),
            amount: self.amount,
            funding: self.funding.clone(),
            policy: self.policy.clone(),
            status: self.status.as_str().to_string(),
            notice: self.notice.clone(),
            submitted_on: self.submitted_on,
            submitted_by: self.submitted_by.clone(),
            recovered: self.recovered,
            paid: self.paid,
            slot: self.slot.as_ref().map(|(kind, year, number)| {
                serde_json::json!({"kind": kind, "year": year, "number": number})
            }),
            payouts: self.payouts.clone(),
            open_objections: self.open_objections.clone(),
        }
    }
}

/// One row of `application_status` (migrations 0003 and 0009), column for column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusRow {
    pub application: String,
    pub program: String,
    pub county: String,
    pub pool: String,
    pub year: i32,
    pub party: String,
    pub display_name: String,
    pub display_id: String,
    pub subject: String,
    pub level: Option<i32>,
    pub amount: Decimal,
    pub funding: String,
    pub policy: String,
    pub status: String,
    pub notice: Option<String>,
    pub submitted_on: NaiveDate,
    pub submitted_by: String,
    pub recovered: Decimal,
    pub paid: Decimal,
    /// The annual slot the decision assigned: `{"kind", "year", "number"}`.
    pub slot: Option<serde_json::Value>,
    /// Payouts issued, in order; the last one is the current one.
    pub payouts: Vec<String>,
    /// Objections filed and not yet resolved.
    pub open_objections: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applications {
    pub by_id: BTreeMap<String, Application>,
    /// Payout → its amount: a failure gives back what its payout issued.
    payout_amounts: BTreeMap<String, Decimal>,
}

impl Applications {
    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        match event_type {
            ApplicationSubmitted::TYPE => {
                let e: ApplicationSubmitted = decode(event_type, data)?;
                self.by_id.insert(
                    e.application.clone(),
                    Application {
                        id: e.application,
                        program: e.program,
                        county: e.county,
                        pool: e.pool,
                        year: e.year,
                        submitted_on: e.submitted_on,
                        submitted_by: e.submitted_by,
                        party: match (&e.person, &e.enterprise) {
                            (Some(p), _) => events::Tag::person(&p.key).to_string(),
                            (None, Some(ent)) => {
                                events::Tag::enterprise(&ent.credit_code).to_string()
                            }
                            (None, None) => String::new(),
                        },
                        display_name: match (&e.person, &e.enterprise) {
                            (Some(p), _) => p.name_masked.clone(),
                            (None, Some(ent)) => ent.name.clone(),
                            (None, None) => String::new(),
                        },
                        display_id: match (&e.person, &e.enterprise) {
                            (Some(p), _) => p.id_number_masked.clone(),
                            (None, Some(ent)) => ent.credit_code.clone(),
                            (None, None) => String::new(),
                        },
                        subject: e.subject,
                        level: e.level,
                        amount: e.decision.amount,
                        funding: e.decision.funding,
                        policy: e.decision.policy,
                        slot: e.decision.slot.map(|s| (s.kind, s.year, s.number)),
                        status: Status::Submitted,
                        notice: None,
                        payouts: Vec::new(),
                        open_objections: Vec::new(),
                        recovered: Decimal::ZERO,
                        payee: e.payee.map(|p| (p.credit_code, p.name)),
                        paid: Decimal::ZERO,
                        lines: e.decision.lines,
                        payout_states: BTreeMap::new(),
                        screened: e.screened,
                        confirmation: None,
                        erased: false,
                    },
                );
            }
            ApplicationApproved::TYPE => {
                let e: ApplicationApproved = decode(event_type, data)?;
                self.set_status(&e.application, Status::Approved);
            }
            ApplicationConfirmed::TYPE => {
                let e: ApplicationConfirmed = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    a.confirmation = Some(Confirmation {
                        confirmed_by: e.confirmed_by,
                        confirmed_on: e.confirmed_on,
                        paid_to: e.paid_to,
                    });
                }
            }
            ApplicationRejected::TYPE => {
                let e: ApplicationRejected = decode(event_type, data)?;
                self.set_status(&e.application, Status::Rejected);
            }
            ApplicationWithdrawn::TYPE => {
                let e: ApplicationWithdrawn = decode(event_type, data)?;
                self.set_status(&e.application, Status::Withdrawn);
            }
            ApplicationNoticed::TYPE => {
                let e: ApplicationNoticed = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    a.status = Status::InNotice;
                    a.notice = Some(e.notice);
                }
            }
            ApplicationCleared::TYPE => {
                let e: ApplicationCleared = decode(event_type, data)?;
                self.set_status(&e.application, Status::Cleared);
            }
            PayoutIssued::TYPE => {
                let e: PayoutIssued = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    if let Some(old) =
                        e.reissue_of.as_ref().and_then(|o| a.payout_states.get_mut(o))
                    {
                        old.replaced = true;
                    }
                    let state =
                        PayoutState { line: e.line, status: Status::PayoutIssued, replaced: false };
                    a.payout_states.insert(e.payout.clone(), state);
                    a.status = a.status_of_payouts();
                    a.paid += e.amount;
                    a.payouts.push(e.payout.clone());
                    self.payout_amounts.insert(e.payout, e.amount);
                }
            }
            PayoutSettled::TYPE => {
                let e: PayoutSettled = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    if let Some(p) = a.payout_states.get_mut(&e.payout) {
                        p.status = Status::Settled;
                    }
                    a.status = a.status_of_payouts();
                }
            }
            ObjectionFiled::TYPE => {
                let e: ObjectionFiled = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    a.open_objections.push(e.objection);
                }
            }
            ObjectionResolved::TYPE => {
                let e: ObjectionResolved = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    a.open_objections.retain(|o| *o != e.objection);
                }
            }
            RecoveryRecorded::TYPE => {
                let e: RecoveryRecorded = decode(event_type, data)?;
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    a.recovered += e.amount;
                    if a.recovered >= a.amount {
                        a.status = Status::Recovered;
                    }
                }
            }
            PersonErased::TYPE => {
                let e: PersonErased = decode(event_type, data)?;
                let party = events::Tag::person(&e.person).to_string();
                // The applications recorded before the erasure; a later one is sealed under
                // the person's next data key and shown.
                for a in self.by_id.values_mut().filter(|a| a.party == party) {
                    a.erased = true;
                    a.display_name = ERASED.to_string();
                    a.display_id = ERASED.to_string();
                }
            }
            PayoutFailed::TYPE => {
                let e: PayoutFailed = decode(event_type, data)?;
                let returned = self.payout_amounts.get(&e.payout).copied().unwrap_or_default();
                if let Some(a) = self.by_id.get_mut(&e.application) {
                    if let Some(p) = a.payout_states.get_mut(&e.payout) {
                        p.status = Status::PayoutFailed;
                    }
                    a.status = a.status_of_payouts();
                    a.paid -= returned;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn set_status(&mut self, id: &str, status: Status) {
        if let Some(a) = self.by_id.get_mut(id) {
            a.status = status;
        }
    }

    /// One party's applications (by its tag, `person:<key>` or `enterprise:<code>`), in
    /// submission order.
    pub fn of_party<'a>(&'a self, party: &'a str) -> impl Iterator<Item = &'a Application> + 'a {
        let mut all: Vec<_> = self.by_id.values().filter(move |a| a.party == party).collect();
        all.sort_by_key(|a| a.submitted_on);
        all.into_iter()
    }

    /// Every row of `application_status`, by application id.
    pub fn status_rows(&self) -> Vec<StatusRow> {
        self.by_id.values().map(Application::status_row).collect()
    }
}
