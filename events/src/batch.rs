//! A payout batch (支付批次, stream `payout-batch-<id>`, tag `batch:<id>`): the payouts of one
//! `POST /v1/payouts` in one pool, as a payroll moves through the bank (the states of an
//! openIMIS payroll): issued → sent to the bank → answered payout by payout (`PayoutSettled`,
//! `PayoutFailed`, which carry the batch's tag) → reconciled.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// The batch was made: its payouts (each a `PayoutIssued` naming the batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutBatchIssued {
    pub batch: String,
    pub pool: String,
    pub payouts: Vec<String>,
    pub amount: Decimal,
    pub issued_on: NaiveDate,
    pub issued_by: String,
}

impl DomainEvent for PayoutBatchIssued {
    const TYPE: &'static str = "PayoutBatchIssued";
    const VERSION: i32 = 1;
}

/// The payment order went to the bank (送盘).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutBatchSent {
    pub batch: String,
    pub sent_on: NaiveDate,
    pub sent_by: String,
}

impl DomainEvent for PayoutBatchSent {
    const TYPE: &'static str = "PayoutBatchSent";
    const VERSION: i32 = 1;
}

/// The bank answered every payout of the batch and the bureau closed it (对账完成), with the
/// figures it closed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutBatchReconciled {
    pub batch: String,
    pub settled: u32,
    pub settled_amount: Decimal,
    pub failed: u32,
    pub failed_amount: Decimal,
    pub reconciled_on: NaiveDate,
    pub reconciled_by: String,
}

impl DomainEvent for PayoutBatchReconciled {
    const TYPE: &'static str = "PayoutBatchReconciled";
    const VERSION: i32 = 1;
}
