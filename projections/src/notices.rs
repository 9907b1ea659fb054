//! Public notices (公示) with their published lines, and the objections (异议) filed against
//! them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{NoticeClosed, NoticeOpened, ObjectionFiled, ObjectionResolved};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::{decode, ProjectionError};

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";
pub const UPHELD: &str = "upheld";
pub const DISMISSED: &str = "dismissed";

/// One row of `notices`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeRow {
    pub notice: String,
    pub county: String,
    pub pool: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub working_days: i32,
    /// The holiday calendar the working days were counted with.
    pub calendar: Option<String>,
    pub opened_by: String,
    /// `open` or `closed`.
    pub status: String,
    pub closed_on: Option<NaiveDate>,
    pub closed_by: Option<String>,
    /// The applications the close cleared for payout.
    pub cleared: Vec<String>,
}

/// One row of `notice_lines`: a line as published, names and ID numbers masked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeLineRow {
    pub notice: String,
    pub application: String,
    pub name_masked: String,
    pub id_number_masked: String,
    pub program: String,
    pub amount: Decimal,
    /// The amount by payee where it is paid per payee (a labour-dispatch refund): a JSON
    /// array of `{"credit_code", "name", "basis", "amount"}`, the company itself without a
    /// credit code of its own line (`"applicant": true`); `[]` otherwise.
    pub payees: serde_json::Value,
}

/// One row of `objections`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectionRow {
    pub objection: String,
    pub notice: String,
    pub application: String,
    pub summary: String,
    pub filed_on: NaiveDate,
    /// When the objection reached the office, when that was before it was recorded.
    pub received_on: Option<NaiveDate>,
    /// `open`, `upheld` or `dismissed`.
    pub status: String,
    pub note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    pub notices: BTreeMap<String, NoticeRow>,
    /// By (notice, application).
    pub lines: BTreeMap<(String, String), NoticeLineRow>,
    pub objections: BTreeMap<String, ObjectionRow>,
}

/// A notice line's parts by payee as `notice_lines.payees` holds them.
pub fn payees_json(lines: &[events::application::LineRecord]) -> serde_json::Value {
    lines
        .iter()
        .map(|l| match &l.payee {
            Some(p) => serde_json::json!({
                "credit_code": p.credit_code, "name": p.name,
                "basis": l.basis, "amount": format!("{:.2}", l.amount),
            }),
            None => serde_json::json!({
                "applicant": true, "basis": l.basis, "amount": format!("{:.2}", l.amount),
            }),
        })
        .collect()
}

impl Notices {
    /// The lines of `applications` once their person was erased: names and ID numbers shown
    /// as [`crate::applications::ERASED`] (the notice itself, its amounts and program stay).
    pub fn erase_lines(&mut self, applications: &[String]) {
        for line in self.lines.values_mut().filter(|l| applications.contains(&l.application)) {
            line.name_masked = crate::applications::ERASED.to_string();
            line.id_number_masked = crate::applications::ERASED.to_string();
        }
    }

    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        match event_type {
            NoticeOpened::TYPE => {
                let e: NoticeOpened = decode(event_type, data)?;
                for l in e.lines {
                    self.lines.insert(
                        (e.notice.clone(), l.application.clone()),
                        NoticeLineRow {
                            notice: e.notice.clone(),
                            application: l.application,
                            name_masked: l.name_masked,
                            id_number_masked: l.id_number_masked,
                            program: l.program,
                            amount: l.amount,
                            payees: payees_json(&l.payees),
                        },
                    );
                }
                self.notices.insert(
                    e.notice.clone(),
                    NoticeRow {
                        notice: e.notice,
                        county: e.county,
                        pool: e.pool,
                        starts_on: e.starts_on,
                        ends_on: e.ends_on,
                        // A notice of more than two billion working days is not a notice.
                        working_days: i32::try_from(e.working_days).unwrap_or(i32::MAX),
                        calendar: e.calendar,
                        opened_by: e.opened_by,
                        status: OPEN.to_string(),
                        closed_on: None,
                        closed_by: None,
                        cleared: Vec::new(),
                    },
                );
            }
            NoticeClosed::TYPE => {
                let e: NoticeClosed = decode(event_type, data)?;
                if let Some(n) = self.notices.get_mut(&e.notice) {
                    n.status = CLOSED.to_string();
                    n.closed_on = Some(e.closed_on);
                    n.closed_by = Some(e.closed_by);
                    n.cleared = e.cleared;
                }
            }
            ObjectionFiled::TYPE => {
                let e: ObjectionFiled = decode(event_type, data)?;
                self.objections.insert(
                    e.objection.clone(),
                    ObjectionRow {
                        objection: e.objection,
                        notice: e.notice,
                        application: e.application,
                        summary: e.summary,
                        filed_on: e.filed_on,
                        received_on: e.received_on,
                        status: OPEN.to_string(),
                        note: None,
                        resolved_by: None,
                        resolved_on: None,
                    },
                );
            }
            ObjectionResolved::TYPE => {
                let e: ObjectionResolved = decode(event_type, data)?;
                if let Some(o) = self.objections.get_mut(&e.objection) {
                    o.status = if e.upheld { UPHELD } else { DISMISSED }.to_string();
                    o.note = Some(e.note);
                    o.resolved_by = Some(e.resolved_by);
                    o.resolved_on = Some(e.resolved_on);
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn notice_rows(&self) -> Vec<NoticeRow> {
        self.notices.values().cloned().collect()
    }

    pub fn line_rows(&self) -> Vec<NoticeLineRow> {
        self.lines.values().cloned().collect()
    }

    pub fn objection_rows(&self) -> Vec<ObjectionRow> {
        self.objections.values().cloned().collect()
    }
}
