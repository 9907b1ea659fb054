//! Each party's history as the submission decisions read it: its applications per year and
//! program with the slots their decisions assigned (`party_slots`), and a person's
//! occupations and levels (`person_certificates`). A view of [`Applications`]: the status
//! rules live there once.

use chrono::NaiveDate;

use crate::applications::{Application, Applications};

/// The programs whose subject is an occupation (or catalog item) and level of a person:
/// the ones `prior()` in `commands::applications` gives the policy. A refund's subject is
/// the enterprise's own credit code, which is no certificate.
pub const CERTIFICATE_PROGRAMS: [&str; 2] = ["skill_upgrade", "vocational_training"];

/// One row of `party_slots`: an application of a party (person or enterprise, by tag) in a
/// policy year, with the slot its decision assigned, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    pub party: String,
    pub year: i32,
    pub program: String,
    pub application: String,
    pub submitted_on: NaiveDate,
    pub slot_kind: Option<String>,
    pub slot_number: Option<i32>,
    pub status: String,
    /// Whether it still holds its slot: [`crate::applications::Status::stands`].
    pub stands: bool,
}

/// One row of `person_certificates`: an occupation (or catalog item) and level a person
/// applied for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    pub party: String,
    pub subject: String,
    pub program: String,
    pub application: String,
    pub level: Option<i32>,
    pub submitted_on: NaiveDate,
    pub status: String,
    pub stands: bool,
}

pub fn slot_row(a: &Application) -> SlotRow {
    SlotRow {
        party: a.party.clone(),
        year: a.year,
        program: a.program.clone(),
        application: a.id.clone(),
        submitted_on: a.submitted_on,
        slot_kind: a.slot.as_ref().map(|(kind, _, _)| kind.clone()),
        // Slot numbers are 1 to a handful a year: an i32 cannot overflow.
        slot_number: a.slot.as_ref().map(|(_, _, n)| i32::try_from(*n).unwrap_or(i32::MAX)),
        status: a.status.as_str().to_string(),
        stands: a.status.stands(),
    }
}

pub fn certificate_row(a: &Application) -> Option<CertificateRow> {
    CERTIFICATE_PROGRAMS.contains(&a.program.as_str()).then(|| CertificateRow {
        party: a.party.clone(),
        subject: a.subject.clone(),
        program: a.program.clone(),
        application: a.id.clone(),
        level: a.level.map(i32::from),
        submitted_on: a.submitted_on,
        status: a.status.as_str().to_string(),
        stands: a.status.stands(),
    })
}

/// Every row of `party_slots`, by (party, year, program, application).
pub fn slot_rows(apps: &Applications) -> Vec<SlotRow> {
    let mut rows: Vec<SlotRow> = apps.by_id.values().map(slot_row).collect();
    rows.sort_by(|a, b| {
        (&a.party, a.year, &a.program, &a.application).cmp(&(
            &b.party,
            b.year,
            &b.program,
            &b.application,
        ))
    });
    rows
}

/// Every row of `person_certificates`, by (party, subject, program, application).
pub fn certificate_rows(apps: &Applications) -> Vec<CertificateRow> {
    let mut rows: Vec<CertificateRow> = apps.by_id.values().filter_map(certificate_row).collect();
    rows.sort_by(|a, b| {
        (&a.party, &a.subject, &a.program, &a.application).cmp(&(
            &b.party,
            &b.subject,
            &b.program,
            &b.application,
        ))
    });
    rows
}

/// How many applications of a party still stand in a year and program: what an annual
/// limit counts (`party_year_counts.standing`).
pub fn standing(apps: &Applications, party: &str, year: i32, program: &str) -> usize {
    apps.of_party(party)
        .filter(|a| a.year == year && a.program == program && a.status.stands())
        .count()
}
