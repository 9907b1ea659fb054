//! A payout batch's state (支付批次), folded from the events tagged `batch:<id>`: the batch's
//! own events and the bank's answers to its payouts. Pure; the rules of its transitions are
//! here too ([`Batch::may_send`], [`Batch::may_reconcile`]), so a command only loads and
//! appends.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{PayoutFailed, PayoutSettled};
use events::batch::{PayoutBatchIssued, PayoutBatchReconciled, PayoutBatchSent};
use events::DomainEvent;
use rust_decimal::Decimal;

use crate::{decode, ProjectionError};

/// The bank's answer to one payout of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Pending,
    Settled,
    Failed,
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BatchStatus {
    /// 已生成: made, not yet sent to the bank.
    Issued,
    /// 已送银行: the payment order went to the bank; answers may be arriving.
    Sent,
    /// 已回盘: every payout has the bank's answer (settled or failed); not yet closed.
    Answered,
    /// 已对账: closed with its figures.
    Reconciled,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Issued => "issued",
            BatchStatus::Sent => "sent",
            BatchStatus::Answered => "answered",
            BatchStatus::Reconciled => "reconciled",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BatchStatus::Issued => "已生成",
            BatchStatus::Sent => "已送银行",
            BatchStatus::Answered => "已回盘",
            BatchStatus::Reconciled => "已对账",
        }
    }
}

/// A refused transition, in precedence order; each code names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchRefusal {
    /// Sent twice, or after the bank answered or the batch was closed.
    #[error("batch {batch} is already {status}: it was sent to the bank once")]
    AlreadySent { batch: String, status: &'static str },
    /// Closed twice.
    #[error("batch {batch} is already reconciled")]
    AlreadyReconciled { batch: String },
    /// Closed before it was sent.
    #[error(
        "batch {batch} was never sent to the bank (POST /v1/payouts/batches/{batch}/sent first)"
    )]
    NotSent { batch: String },
    /// Closed while payouts still wait for the bank.
    #[error("batch {batch}: {pending} of its payouts have no answer from the bank yet")]
    NotAnswered { batch: String, pending: usize },
}

impl BatchRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            BatchRefusal::AlreadySent { .. } => "batch_already_sent",
            BatchRefusal::AlreadyReconciled { .. } => "batch_already_reconciled",
            BatchRefusal::NotSent { .. } => "batch_not_sent",
            BatchRefusal::NotAnswered { .. } => "batch_not_answered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch: String,
    pub pool: String,
    pub amount: Decimal,
    pub issued_on: NaiveDate,
    pub issued_by: String,
    /// Payout → its amount (from the batch) and the bank's answer.
    pub payouts: BTreeMap<String, (Decimal, Answer)>,
    pub sent_on: Option<NaiveDate>,
    pub reconciled: Option<PayoutBatchReconciled>,
}

impl Batch {
    /// Folds the events of one batch (those tagged `batch:<id>`, in log order). `None` when
    /// they hold no `PayoutBatchIssued`.
    pub fn fold<'a>(
        events: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) -> Result<Option<Batch>, ProjectionError> {
        let mut batch: Option<Batch> = None;
        let mut amounts: BTreeMap<String, Decimal> = BTreeMap::new();
        for (t, data) in events {
            match t {
                PayoutBatchIssued::TYPE => {
                    let e: PayoutBatchIssued = decode(t, data)?;
                    batch = Some(Batch {
                        batch: e.batch,
                        pool: e.pool,
                        amount: e.amount,
                        issued_on: e.issued_on,
                        issued_by: e.issued_by,
                        payouts: e
                            .payouts
                            .into_iter()
                            .map(|p| (p, (Decimal::ZERO, Answer::Pending)))
                            .collect(),
                        sent_on: None,
                        reconciled: None,
                    });
                }
                // Appended with the batch, before or after its `PayoutBatchIssued`.
                "PayoutIssued" => {
                    let e: events::application::PayoutIssued = decode(t, data)?;
                    amounts.insert(e.payout, e.amount);
                }
                PayoutBatchSent::TYPE => {
                    let e: PayoutBatchSent = decode(t, data)?;
                    if let Some(b) = batch.as_mut() {
                        b.sent_on = Some(e.sent_on);
                    }
                }
                PayoutSettled::TYPE | PayoutFailed::TYPE => {
                    let (payout, answer) = if t == PayoutSettled::TYPE {
                        (decode::<PayoutSettled, _>(t, data)?.payout, Answer::Settled)
                    } else {
                        (decode::<PayoutFailed, _>(t, data)?.payout, Answer::Failed)
                    };
                    if let Some(p) = batch.as_mut().and_then(|b| b.payouts.get_mut(&payout)) {
                        p.1 = answer;
                    }
                }
                PayoutBatchReconciled::TYPE => {
                    let e: PayoutBatchReconciled = decode(t, data)?;
                    if let Some(b) = batch.as_mut() {
                        b.reconciled = Some(e);
                    }
                }
                _ => {}
            }
        }
        if let Some(b) = batch.as_mut() {
            for (payout, (amount, _)) in b.payouts.iter_mut() {
                *amount = amounts.get(payout).copied().unwrap_or_default();
            }
        }
        Ok(batch)
    }

    pub fn pending(&self) -> usize {
        self.payouts.values().filter(|(_, a)| *a == Answer::Pending).count()
    }

    /// Count and amount of the payouts with `answer`.
    pub fn answered(&self, answer: Answer) -> (u32, Decimal) {
        self.payouts
            .values()
            .filter(|(_, a)| *a == answer)
            .fold((0, Decimal::ZERO), |(n, sum), (amount, _)| (n + 1, sum + amount))
    }

    /// A batch is answered once it was sent and every payout has the bank's answer. Answers
    /// to a batch never marked sent are recorded all the same (the bank's file is what the
    /// bank did), but the batch stays `issued` until someone records that it was sent.
    pub fn status(&self) -> BatchStatus {
        if self.reconciled.is_some() {
            BatchStatus::Reconciled
        } else if self.sent_on.is_some() && self.pending() == 0 {
            BatchStatus::Answered
        } else if self.sent_on.is_some() {
            BatchStatus::Sent
        } else {
            BatchStatus::Issued
        }
    }

    /// Sending: only a batch that was not sent yet.
    pub fn may_send(&self) -> Result<(), BatchRefusal> {
        match self.status() {
            BatchStatus::Issued => Ok(()),
            other => {
                Err(BatchRefusal::AlreadySent { batch: self.batch.clone(), status: other.as_str() })
            }
        }
    }

    /// Closing: once, after it was sent, when every payout has the bank's answer. Returns the
    /// figures the batch closes on.
    pub fn may_reconcile(
        &self,
        on: NaiveDate,
        by: &str,
    ) -> Result<PayoutBatchReconciled, BatchRefusal> {
        let batch = self.batch.clone();
        if self.reconciled.is_some() {
            return Err(BatchRefusal::AlreadyReconciled { batch });
        }
        if self.sent_on.is_none() {
            return Err(BatchRefusal::NotSent { batch });
        }
        let pending = self.pending();
        if pending > 0 {
            return Err(BatchRefusal::NotAnswered { batch, pending });
        }
        let (settled, settled_amount) = self.answered(Answer::Settled);
        let (failed, failed_amount) = self.answered(Answer::Failed);
        Ok(PayoutBatchReconciled {
            batch,
            settled,
            settled_amount,
            failed,
            failed_amount,
            reconciled_on: on,
            reconciled_by: by.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn fold(events: &[(&str, serde_json::Value)]) -> Batch {
        Batch::fold(events.iter().map(|(t, d)| (*t, d))).unwrap().unwrap()
    }

    fn issued() -> (&'static str, serde_json::Value) {
        (
            "PayoutBatchIssued",
            json!({"batch": "b1", "pool": "371500", "payouts": ["p1", "p2"], "amount": "1200.00",
                   "issued_on": "2024-11-12", "issued_by": "f"}),
        )
    }

    fn payout(p: &str) -> (&'static str, serde_json::Value) {
        (
            "PayoutIssued",
            json!({"payout": p, "application": "a", "pool": "371500", "year": 2024, "amount": "600.00",
                   "counts_against_quota": true, "paid_on": "2024-11-12", "issued_by": "f", "batch": "b1"}),
        )
    }

    fn sent() -> (&'static str, serde_json::Value) {
        ("PayoutBatchSent", json!({"batch": "b1", "sent_on": "2024-11-12", "sent_by": "f"}))
    }

    #[test]
    fn a_batch_goes_issued_sent_answered_reconciled_and_refuses_every_step_out_of_order() {
        // As `issue_payouts` appends them: the payouts, then the batch.
        let mut log = vec![payout("p1"), payout("p2"), issued()];
        let b = fold(&log);
        assert_eq!(b.status(), BatchStatus::Issued);
        let refused = b.may_reconcile(day("2024-11-20"), "f").unwrap_err();
        assert_eq!(refused.code(), "batch_not_sent");
        b.may_send().unwrap();

        log.push(sent());
        let b = fold(&log);
        assert_eq!(b.status(), BatchStatus::Sent);
        assert_eq!(b.may_send().unwrap_err().code(), "batch_already_sent");
        log.push((
            "PayoutSettled",
            json!({"payout": "p1", "application": "a", "bank_reference": "B", "settled_on": "2024-11-13"}),
        ));
        let refused = fold(&log).may_reconcile(day("2024-11-20"), "f").unwrap_err();
        assert_eq!((refused.code(), fold(&log).pending()), ("batch_not_answered", 1));

        log.push((
            "PayoutFailed",
            json!({"payout": "p2", "application": "a", "reason": "销户", "failed_on": "2024-11-14"}),
        ));
        let b = fold(&log);
        assert_eq!(b.status(), BatchStatus::Answered);
        let closed = b.may_reconcile(day("2024-11-20"), "f").unwrap();
        let money = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(
            (closed.settled, closed.settled_amount, closed.failed, closed.failed_amount),
            (1, money("600.00"), 1, money("600.00"))
        );

        log.push(("PayoutBatchReconciled", serde_json::to_value(&closed).unwrap()));
        let b = fold(&log);
        assert_eq!((b.status(), b.status().label()), (BatchStatus::Reconciled, "已对账"));
        assert_eq!(
            b.may_reconcile(day("2024-11-21"), "f").unwrap_err().code(),
            "batch_already_reconciled"
        );
        assert_eq!(b.may_send().unwrap_err().code(), "batch_already_sent");
    }
}
