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
    /// The parts of the amount by payee, where a part goes to someone other than the
    /// applicant: a labour-dispatch company's refund (劳务派遣, 鲁人社发〔2024〕8号 item 3) goes
    /// to each host employer for its dispatched workers and to the company for its own staff.
    /// Each part with money is paid as its own payout. Added later: absent, and never written
    /// when empty, so earlier rows read and hash as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineRecord>,
}

/// One part of a decision's amount (分项): who receives it, and how it was computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRecord {
    /// The host employer (用工单位) paid this part; absent: the applicant itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<EnterpriseRecord>,
    /// How the amount was computed, for the clerk, the notice and the auditor.
    pub basis: String,
    /// Zero for a part the rules exclude (workers dispatched to government bodies and public
    /// institutions): recorded, shown, never paid.
    pub amount: Decimal,
    pub rule: String,
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
    /// 免申即享: the office screened the enterprise by data (it did not apply); it is reviewed
    /// only once the enterprise has confirmed (`ApplicationConfirmed`). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub screened: bool,
}

/// The enterprise confirmed a refund the office screened it for (免申即享, 鲁人社发〔2024〕8号
/// item 7: 比对筛选 → 告知 → 企业确认 → 审核): who confirmed, when, and the account it is paid to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationConfirmed {
    pub application: String,
    /// The enterprise's person who confirmed (e.g. its 经办人 or legal representative), as
    /// the enterprise gave it: a unit's contact, stored as given.
    pub confirmed_by: String,
    pub confirmed_on: NaiveDate,
    /// `large`, `medium`, `small` or `micro` (中小企业划型), as the enterprise stated it.
    pub size_class: String,
    pub corporate_account: bool,
    /// `corporate`, or `social_insurance` (a small or micro enterprise without a corporate
    /// account: the account it pays social insurance from).
    pub paid_to: String,
    /// The clerk (token label) who recorded the confirmation.
    pub recorded_by: String,
}

impl DomainEvent for ApplicationConfirmed {
    const TYPE: &'static str = "ApplicationConfirmed";
    const VERSION: i32 = 1;
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
    /// The amount by payee, as published, where it is paid per payee (a labour-dispatch
    /// refund: each host employer and the company). Added later: absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payees: Vec<LineRecord>,
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
    /// Which line of the decision this payout pays (index into `DecisionRecord::lines`), for
    /// an application paid per payee; a reissue pays the line of the payout it replaces.
    /// Absent for an application paid as one payout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Whom this payout pays when not the party of the application: the host employer of a
    /// line. Absent: the application's party (or its training institution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<EnterpriseRecord>,
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

    /// A decision and a notice line recorded before refunds were paid per payee read back
    /// without lines and write back unchanged; one with lines keeps them.
    #[test]
    fn decisions_and_notice_lines_recorded_before_payees_read_and_write_back_unchanged() {
        let stored = r#"{"policy":"shandong-2024-job-stabilization","document":"鲁人社发〔2024〕8号","amount":"72000.00","amount_rule":"r","funding":"unemployment_insurance","funding_rule":"f"}"#;
        let read: DecisionRecord = serde_json::from_str(stored).unwrap();
        assert!(read.lines.is_empty());
        assert_eq!(serde_json::to_string(&read).unwrap(), stored);
        let line = r#"{"application":"a-1","name_masked":"某公司","id_number_masked":"91370800MA3C1234XP","program":"job_stabilization_refund","amount":"72000.00"}"#;
        let read: NoticeLine = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), line);

        let host =
            EnterpriseRecord { credit_code: "91371500MA3C7777X1".into(), name: "某".into() };
        let part = LineRecord {
            payee: Some(host),
            basis: "premiums".into(),
            amount: Decimal::new(3_600_000, 2),
            rule: "dispatch_host_share".into(),
        };
        let with = DecisionRecord { lines: vec![part], ..read_decision(stored) };
        let text = serde_json::to_string(&with).unwrap();
        assert_eq!(serde_json::from_str::<DecisionRecord>(&text).unwrap(), with);
    }

    fn read_decision(text: &str) -> DecisionRecord {
        serde_json::from_str(text).unwrap()
    }
}
