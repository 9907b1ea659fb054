//! Payouts (拨付) and what the bank made of them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{ApplicationSubmitted, PayoutFailed, PayoutIssued, PayoutSettled};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::{decode, ProjectionError};

/// What a payout or a recovery is booked under, which only the submission records: the
/// application's county, program and funding source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Books {
    by_application: BTreeMap<String, Booking>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Booking {
    pub county: String,
    pub program: String,
    pub funding: String,
    /// The unit paid unless a payout names another: the training institution paid on the
    /// trainee's behalf, or the enterprise applying. None for a person (no personal
    /// information in the books).
    pub payee: Option<(String, String)>,
}

impl Books {
    pub(crate) fn submitted(&mut self, e: ApplicationSubmitted) {
        let payee = e.payee.or(e.enterprise).map(|p| (p.credit_code, p.name));
        self.by_application.insert(
            e.application,
            Booking { county: e.county, program: e.program, funding: e.decision.funding, payee },
        );
    }

    pub(crate) fn get(&self, application: &str) -> Option<&Booking> {
        self.by_application.get(application)
    }
}

pub const ISSUED: &str = "issued";
pub const SETTLED: &str = "settled";
pub const FAILED: &str = "failed";

/// One row of `payouts`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PayoutRow {
    pub payout: String,
    pub application: String,
    pub pool: String,
    pub county: String,
    pub program: String,
    pub funding: String,
    pub year: i32,
    pub amount: Decimal,
    pub paid_on: NaiveDate,
    pub issued_by: String,
    /// `issued`, `settled` or `failed`.
    pub status: String,
    pub bank_reference: Option<String>,
    pub settled_on: Option<NaiveDate>,
    pub failure_reason: Option<String>,
    pub failed_on: Option<NaiveDate>,
    /// The unit this payout pays (credit code and name): the host employer of a
    /// labour-dispatch line, the training institution, or the enterprise; none for a person.
    pub payee_credit_code: Option<String>,
    pub payee_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payouts {
    pub by_id: BTreeMap<String, PayoutRow>,
    books: Books,
}

impl Payouts {
    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        match event_type {
            ApplicationSubmitted::TYPE => self.books.submitted(decode(event_type, data)?),
            PayoutIssued::TYPE => {
                let e: PayoutIssued = decode(event_type, data)?;
                if let Some(b) = self.books.get(&e.application) {
                    let (payee_credit_code, payee_name) =
                        match e.payee.map(|p| (p.credit_code, p.name)).or(b.payee.clone()) {
                            Some((code, name)) => (Some(code), Some(name)),
                            None => (None, None),
                        };
                    let row = PayoutRow {
                        payee_credit_code,
                        payee_name,
                        payout: e.payout.clone(),
                        application: e.application,
                        pool: e.pool,
                        county: b.county.clone(),
                        program: b.program.clone(),
                        funding: b.funding.clone(),
                        year: e.year,
                        amount: e.amount,
                        paid_on: e.paid_on,
                        issued_by: e.issued_by,
                        status: ISSUED.to_string(),
                        bank_reference: None,
                        settled_on: None,
                        failure_reason: None,
                        failed_on: None,
                    };
                    self.by_id.insert(e.payout, row);
                }
            }
            PayoutSettled::TYPE => {
                let e: PayoutSettled = decode(event_type, data)?;
                if let Some(p) = self.by_id.get_mut(&e.payout) {
                    p.status = SETTLED.to_string();
                    p.bank_reference = Some(e.bank_reference);
                    p.settled_on = Some(e.settled_on);
                }
            }
            PayoutFailed::TYPE => {
                let e: PayoutFailed = decode(event_type, data)?;
                if let Some(p) = self.by_id.get_mut(&e.payout) {
                    p.status = FAILED.to_string();
                    p.failure_reason = Some(e.reason);
                    p.failed_on = Some(e.failed_on);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Every row of `payouts`, by payout id.
    pub fn rows(&self) -> Vec<PayoutRow> {
        self.by_id.values().cloned().collect()
    }
}
