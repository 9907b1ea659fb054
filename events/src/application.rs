//! Events of an application's life (stream `application-<id>`). Personal information is
//! stored as a keyed hash (to match a person) and sealed copies (to show it where allowed),
//! never in clear; the masked forms are what lists and notices show.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// The person an application is for, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonRecord {
    /// HMAC-SHA256 of the resident ID number, hex.
    pub key: String,
    /// The ID number, sealed (AES-256-GCM, base64).
    pub id_number_sealed: String,
    /// The name, sealed.
    pub name_sealed: String,
    /// `370802********1234`
    pub id_number_masked: String,
    /// `张*三`
    pub name_masked: String,
}

/// The enterprise a refund is for. Enterprise identifiers and names are public, not personal
/// information: stored as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnterpriseRecord {
    /// Unified social credit code (GB 32100).
    pub credit_code: String,
    pub name: String,
}

/// What the policy decided at submission, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecord {
    /// Policy id and document number, e.g. `jining-2025-skill-upgrade`, `济人社字〔2025〕51号`.
    pub policy: String,
    pub document: String,
    pub amount: Decimal,
    pub amount_rule: String,
    /// `expansion_pilot`, `employment_subsidy` or `unemployment_insurance`.
    pub funding: String,
    pub funding_rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRecord {
    /// `base` or `extra`
    pub kind: String,
    pub year: i32,
    pub number: u32,
    pub rule: String,
}

/// An application was submitted (申请) and passed the policy's checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSubmitted {
    pub application: String,
    /// `skill_upgrade`, `vocational_training` or `job_stabilization_refund`.
    pub program: String,
    pub county: String,
    pub pool: String,
    pub submitted_on: NaiveDate,
    /// Policy year: the calendar year of the submission date (DOMAIN.md, Interpretation).
    pub year: i32,
    /// The clerk (token label) who submitted it; they may not review it.
    pub submitted_by: String,
    /// For the programs paid to a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonRecord>,
    /// For the programs paid to an enterprise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<EnterpriseRecord>,
    /// Occupation code, or catalog key for training items without one; the credit code for
    /// an enterprise.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// The request's program-specific fields that are not personal (certificate, training,
    /// eligibility), as received.
    pub details: serde_json::Value,
    pub decision: DecisionRecord,
    /// Who the payouts go to when not the applicant: a training institution paid on a
    /// trainee's behalf. Added later: absent, and never written when absent, in earlier rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<EnterpriseRecord>,
}

impl DomainEvent for ApplicationSubmitted {
    const TYPE: &'static str = "ApplicationSubmitted";
    const VERSION: i32 = 1;
}

/// A reviewer approved the application (审核通过); expansion-pilot money is now committed
/// against the pool's quota for the year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationApproved {
    pub application: String,
    pub pool: String,
    pub year: i32,
    pub amount: Decimal,
    pub funding: String,
    pub counts_against_quota: bool,
    pub reviewer: String,
    pub approved_on: NaiveDate,
}

impl DomainEvent for ApplicationApproved {
    const TYPE: &'static str = "ApplicationApproved";
    const VERSION: i32 = 1;
}

/// A reviewer rejected the application, with reasons a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRejected {
    pub application: String,
    pub reasons: Vec<String>,
    pub reviewer: String,
    pub rejected_on: NaiveDate,
}

impl DomainEvent for ApplicationRejected {
    const TYPE: &'static str = "ApplicationRejected";
    const VERSION: i32 = 1;
}

/// The clerk withdrew the application; its slot and any committed quota are freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationWithdrawn {
    pub application: String,
    pub reason: String,
    pub withdrawn_by: String,
    pub withdrawn_on: NaiveDate,
}

impl DomainEvent for ApplicationWithdrawn {
    const TYPE: &'static str = "ApplicationWithdrawn";
    const VERSION: i32 = 1;
}

/// One line of a public notice (公示), as the published list shows it: a person's name and ID
/// number masked; for an enterprise, its name and credit code, which are public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeLine {
    pub application: String,
    pub name_masked: String,
    pub id_number_masked: String,
    pub program: String,
    pub amount: Decimal,
}

/// A public notice was opened for approved applications (stream `notice-<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeOpened {
    pub notice: String,
    pub county: String,
    pub pool: String,
    pub starts_on: NaiveDate,
    /// The last day of the period, inclusive.
    pub ends_on: NaiveDate,
    pub working_days: u32,
    /// The holiday-calendar policy that counted the working days (absent in notices
    /// recorded before calendars were published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
    pub lines: Vec<NoticeLine>,
    pub opened_by: String,
}

impl DomainEvent for NoticeOpened {
    const TYPE: &'static str = "NoticeOpened";
    const VERSION: i32 = 1;
}

/// An application entered a public notice (its own stream's record of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationNoticed {
    pub application: String,
    pub notice: String,
    pub ends_on: NaiveDate,
}

impl DomainEvent for ApplicationNoticed {
    const TYPE: &'static str = "ApplicationNoticed";
    const VERSION: i32 = 1;
}

/// The notice period ended; the applications without an open or upheld objection are cleared
/// for payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeClosed {
    pub notice: String,
    pub closed_on: NaiveDate,
    pub cleared: Vec<String>,
    pub closed_by: String,
}

impl DomainEvent for NoticeClosed {
    const TYPE: &'static str = "NoticeClosed";
    const VERSION: i32 = 1;
}

/// The application passed its public notice and may be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationCleared {
    pub application: String,
    pub notice: String,
    pub cleared_on: NaiveDate,
}

impl DomainEvent for ApplicationCleared {
    const TYPE: &'static str = "ApplicationCleared";
    const VERSION: i32 = 1;
}

/// A payout (拨付) was issued to the application's account; committed quota money becomes paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutIssued {
    pub payout: String,
    pub application: String,
    pub pool: String,
    pub year: i32,
    pub amount: Decimal,
    pub counts_against_quota: bool,
    pub paid_on: NaiveDate,
    pub issued_by: String,
    /// A reissue (重新支付) names the failed payout it replaces. Added after the first
    /// payouts were recorded: absent in those rows, and never written when absent, so their
    /// encoding (and the audit hash over it) is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissue_of: Option<String>,
    /// The corrected account a reissue is paid to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountRecord>,
    /// The payout batch (支付批次) it was issued in: absent in payouts recorded before
    /// batches existed and in reissues (a reissue is paid on its own), never written when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// A bank account as events hold it: the number sealed (AES-256-GCM), and masked for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRecord {
    pub bank: String,
    pub number_sealed: String,
    pub number_masked: String,
    /// The keyed hash of the number (HMAC-SHA256, the person-key key): what compares one
    /// account with another without opening it. Absent in reissues recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_key: Option<String>,
}

impl DomainEvent for PayoutIssued {
    const TYPE: &'static str = "PayoutIssued";
    const VERSION: i32 = 1;
}

/// The bank settled the payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutSettled {
    pub payout: String,
    pub application: String,
    pub bank_reference: String,
    pub settled_on: NaiveDate,
}

impl DomainEvent for PayoutSettled {
    const TYPE: &'static str = "PayoutSettled";
    const VERSION: i32 = 1;
}

/// The bank could not pay (e.g. a closed account); the payout may be reissued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutFailed {
    pub payout: String,
    pub application: String,
    pub reason: String,
    pub failed_on: NaiveDate,
}

impl DomainEvent for PayoutFailed {
    const TYPE: &'static str = "PayoutFailed";
    const VERSION: i32 = 1;
}

/// An objection (异议) to an application on public notice; it holds the application until
/// resolved. Tagged `objection:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectionFiled {
    pub objection: String,
    pub notice: String,
    pub application: String,
    pub summary: String,
    pub filed_on: NaiveDate,
    /// The day the objection reached the office, when earlier than `filed_on` (received on
    /// paper during the period, entered later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_on: Option<NaiveDate>,
}

impl DomainEvent for ObjectionFiled {
    const TYPE: &'static str = "ObjectionFiled";
    const VERSION: i32 = 1;
}

/// A reviewer resolved an objection. Upheld: the application is rejected in the same
/// transaction (an `ApplicationRejected` follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectionResolved {
    pub objection: String,
    pub application: String,
    pub upheld: bool,
    pub note: String,
    pub resolved_by: String,
    pub resolved_on: NaiveDate,
}

impl DomainEvent for ObjectionResolved {
    const TYPE: &'static str = "ObjectionResolved";
    const VERSION: i32 = 1;
}

/// Money paid wrongly was recovered (追回). Frees quota and, once the whole amount is back,
/// the annual slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRecorded {
    pub recovery: String,
    pub application: String,
    pub pool: String,
    pub year: i32,
    pub amount: Decimal,
    pub counts_against_quota: bool,
    pub reason: String,
    pub recovered_on: NaiveDate,
    pub recorded_by: String,
}

impl DomainEvent for RecoveryRecorded {
    const TYPE: &'static str = "RecoveryRecorded";
    const VERSION: i32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payout recorded before `reissue_of` and `account` existed reads back with both absent,
    /// and writes back byte for byte as it was stored: its audit hash stays valid.
    #[test]
    fn a_payout_recorded_before_reissues_existed_reads_and_writes_back_unchanged() {
        let stored = r#"{"payout":"p-1","application":"a-1","pool":"371500","year":2024,"amount":"600.00","counts_against_quota":true,"paid_on":"2024-11-12","issued_by":"财政 王"}"#;
        let read: PayoutIssued = serde_json::from_str(stored).unwrap();
        assert_eq!((read.reissue_of.as_deref(), read.account.as_ref()), (None, None));
        assert_eq!(serde_json::to_string(&read).unwrap(), stored);

        let reissue = PayoutIssued { reissue_of: Some("p-1".into()), ..read };
        let text = serde_json::to_string(&reissue).unwrap();
        assert!(text.ends_with(r#""reissue_of":"p-1"}"#), "{text}");
        assert_eq!(serde_json::from_str::<PayoutIssued>(&text).unwrap(), reissue);
    }
}
