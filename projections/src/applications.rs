//! Applications: status, amount, policy, and each person's history across years.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{
    ApplicationApproved, ApplicationRejected, ApplicationSubmitted, ApplicationWithdrawn,
};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::{decode, ProjectionError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Submitted,
    Approved,
    Rejected,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
        }
    }
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
    pub person_key: String,
    pub subject: String,
    pub level: Option<u8>,
    pub amount: Decimal,
    pub funding: String,
    pub policy: String,
    pub slot: Option<(String, i32, u32)>,
    pub status: Status,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applications {
    pub by_id: BTreeMap<String, Application>,
}

impl Applications {
    pub fn apply(
        &mut self,
        event_type: &str,
        data: &serde_json::Value,
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
                        person_key: e.person.key,
                        subject: e.subject,
                        level: e.level,
                        amount: e.decision.amount,
                        funding: e.decision.funding,
                        policy: e.decision.policy,
                        slot: e.decision.slot.map(|s| (s.kind, s.year, s.number)),
                        status: Status::Submitted,
                    },
                );
            }
            ApplicationApproved::TYPE => {
                let e: ApplicationApproved = decode(event_type, data)?;
                self.set_status(&e.application, Status::Approved);
            }
            ApplicationRejected::TYPE => {
                let e: ApplicationRejected = decode(event_type, data)?;
                self.set_status(&e.application, Status::Rejected);
            }
            ApplicationWithdrawn::TYPE => {
                let e: ApplicationWithdrawn = decode(event_type, data)?;
                self.set_status(&e.application, Status::Withdrawn);
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

    /// One person's applications, in submission order.
    pub fn of_person<'a>(
        &'a self,
        person_key: &'a str,
    ) -> impl Iterator<Item = &'a Application> + 'a {
        let mut all: Vec<_> =
            self.by_id.values().filter(move |a| a.person_key == person_key).collect();
        all.sort_by_key(|a| a.submitted_on);
        all.into_iter()
    }
}
