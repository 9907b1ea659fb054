//! The bank's result file (银行回盘文件): settled and failed payouts recorded once, and the
//! reconciliation (对账) of the file against the ledger.
//!
//! Reading the file is pure ([`decode`], [`parse`], [`duplicates`]): UTF-8 or GBK, with or
//! without a byte-order mark, the header naming the columns in English or with the bank's own
//! Chinese names ([`COLUMN_NAMES`]). Each good line is then its own command
//! ([`reconcile_line`]): within the HTTP unit of work a savepoint of its own, so a line that
//! fails rolls back alone and never takes a good line with it. A payout already settled or
//! failed is reported `already_recorded` and nothing is appended, so the same file imported
//! twice records nothing the second time.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use events::application::{PayoutFailed, PayoutIssued, PayoutSettled};
use events::DomainEvent;
use rust_decimal::Decimal;
use serde::Serialize;

use super::payouts::{payout_tag, read_applications, settlement_event, PayoutError, Settlement};
use super::{execute, Db, Decided};
use crate::store::{Append, ExpectedVersion};

/// Most lines one file may carry (a city's monthly batch is a few thousand).
pub const IMPORT_LINES_MAX: usize = 20_000;
/// Days after which an issued payout with no bank line is reported `unanswered`, by default.
pub const UNANSWERED_AFTER_DAYS_DEFAULT: u32 = 10;

/// A column of the bank file, and the header names that mean it (compared trimmed, ASCII
/// case-insensitively). The English names are the contract of API.md; the Chinese ones are
/// what the result files of Chinese banks call them. `业务编号` (the business number the
/// bureau sent the bank with the payment order) is the payout id; `交易流水号` (the bank's own
/// serial number of the transfer) is its reference.
pub const COLUMN_NAMES: [(Column, &[&str]); 6] = [
    (Column::PayoutId, &["payout_id", "业务编号", "付款编号", "支付编号", "商户订单号"]),
    (Column::Amount, &["amount", "金额", "交易金额", "付款金额", "金额(元)", "金额（元）"]),
    (Column::Status, &["status", "状态", "处理结果", "交易状态", "处理状态"]),
    (Column::SettledOn, &["settled_on", "日期", "交易日期", "处理日期", "入账日期"]),
    (Column::BankReference, &["bank_reference", "交易流水号", "银行流水号", "流水号"]),
    (Column::Reason, &["reason", "失败原因", "备注", "附言"]),
];

/// Status values: `settled`/`成功` (and the banks' variants) and `failed`/`失败`.
const SETTLED_WORDS: [&str; 5] = ["settled", "成功", "交易成功", "支付成功", "已入账"];
const FAILED_WORDS: [&str; 5] = ["failed", "失败", "交易失败", "支付失败", "退票"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    PayoutId,
    Amount,
    Status,
    SettledOn,
    BankReference,
    Reason,
}

impl Column {
    fn name(self) -> &'static str {
        COLUMN_NAMES.iter().find(|(c, _)| *c == self).map_or("", |(_, names)| names[0])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BankStatus {
    Settled,
    Failed,
}

/// One line of the bank's file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankLine {
    /// The line's number in the file (the header is line 1).
    pub line: usize,
    pub payout_id: Option<String>,
    pub bank_reference: Option<String>,
    pub amount: Decimal,
    pub status: BankStatus,
    pub on: NaiveDate,
    pub reason: Option<String>,
}

impl BankLine {
    /// What identifies the payout the line is about, for finding duplicates.
    fn key(&self) -> String {
        match (&self.payout_id, &self.bank_reference) {
            (Some(id), _) => format!("payout:{id}"),
            (None, Some(r)) => format!("reference:{r}"),
            (None, None) => String::new(),
        }
    }
}

/// A line that cannot be read, with the column and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidLine {
    pub line: usize,
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ImportError {
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Invalid { .. } => "validation_failed",
            ImportError::Store(_) | ImportError::Database(_) => "internal",
        }
    }
}

/// The file's text and the encoding it was read in: UTF-8 (a byte-order mark is dropped),
/// else GBK (GB18030, its superset, which is how Chinese banks' "GBK" files decode).
pub fn decode(bytes: &[u8]) -> Result<(String, &'static str), ImportError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest).map(|s| (s.to_string(), "utf-8")).map_err(|_| {
            ImportError::Invalid {
                field: "body",
                message: "the file starts with a UTF-8 byte-order mark but is not UTF-8".into(),
            }
        });
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((s.to_string(), "utf-8"));
    }
    let (text, _, malformed) = encoding_rs::GB18030.decode(bytes);
    if malformed {
        return Err(ImportError::Invalid {
            field: "body",
            message: "the file is neither UTF-8 nor GBK text".into(),
        });
    }
    Ok((text.into_owned(), "gbk"))
}

/// One CSV record's cells (RFC 4180 quoting; a quoted cell does not span lines).
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (false, ',') => out.push(std::mem::take(&mut cell)),
            (_, c) => cell.push(c),
        }
    }
    out.push(cell);
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn parse_amount(s: &str) -> Option<Decimal> {
    let cleaned: String = s.chars().filter(|c| !matches!(c, ',' | '¥' | '￥' | ' ')).collect();
    let d: Decimal = cleaned.parse().ok()?;
    (d > Decimal::ZERO && d.scale() <= 2).then_some(d)
}

/// Parses the file: the lines that read, and those that do not (each with its column and
/// rule). A header without the payout id (or the bank reference), the amount, the status or
/// the date refuses the whole file.
pub fn parse(text: &str) -> Result<(Vec<BankLine>, Vec<InvalidLine>), ImportError> {
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((_, l)) => break cells(l),
            None => {
                return Err(ImportError::Invalid {
                    field: "body",
                    message: "the file is empty; send the bank's result file with its header"
                        .into(),
                })
            }
        }
    };
    let mut columns: BTreeMap<Column, usize> = BTreeMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if let Some((c, _)) = COLUMN_NAMES.iter().find(|(_, names)| names.contains(&name.as_str()))
        {
            columns.entry(*c).or_insert(i);
        }
    }
    for needed in [Column::Amount, Column::Status, Column::SettledOn] {
        if !columns.contains_key(&needed) {
            return Err(ImportError::Invalid {
                field: "header",
                message: format!(
                    "no `{}` column; the header needs at least payout_id,amount,status,settled_on,bank_reference,reason (or the bank's names, see README)",
                    needed.name()
                ),
            });
        }
    }
    if !columns.contains_key(&Column::PayoutId) && !columns.contains_key(&Column::BankReference) {
        return Err(ImportError::Invalid {
            field: "header",
            message: "no `payout_id` (业务编号) or `bank_reference` (交易流水号) column".into(),
        });
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (number, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        if good.len() + bad.len() >= IMPORT_LINES_MAX {
            return Err(ImportError::Invalid {
                field: "body",
                message: format!("a file holds at most {IMPORT_LINES_MAX} lines; split it"),
            });
        }
        let row = cells(text);
        let get = |c: Column| {
            columns
                .get(&c)
                .and_then(|&i| row.get(i))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let invalid =
            |field: &'static str, message: String| InvalidLine { line: number, field, message };
        let payout_id = get(Column::PayoutId);
        let bank_reference = get(Column::BankReference);
        if payout_id.is_none() && bank_reference.is_none() {
            bad.push(invalid("payout_id", "neither a payout id nor a bank reference".into()));
            continue;
        }
        let Some(amount) = get(Column::Amount).as_deref().and_then(parse_amount) else {
            bad.push(invalid(
                "amount",
                "not an amount of yuan above 0 with at most 2 decimals".into(),
            ));
            continue;
        };
        let status = match get(Column::Status) {
            Some(s) if SETTLED_WORDS.contains(&s.to_ascii_lowercase().as_str()) => {
                BankStatus::Settled
            }
            Some(s) if FAILED_WORDS.contains(&s.to_ascii_lowercase().as_str()) => {
                BankStatus::Failed
            }
            _ => {
                bad.push(invalid("status", "must be settled (成功) or failed (失败)".into()));
                continue;
            }
        };
        let Some(on) = get(Column::SettledOn).as_deref().and_then(parse_date) else {
            bad.push(invalid(
                "settled_on",
                "not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)".into(),
            ));
            continue;
        };
        let reason = get(Column::Reason);
        if status == BankStatus::Failed && reason.is_none() {
            bad.push(invalid("reason", "a failed line needs the bank's reason".into()));
            continue;
        }
        if status == BankStatus::Settled && bank_reference.is_none() {
            bad.push(invalid(
                "bank_reference",
                "a settled line needs the bank's reference (交易流水号)".into(),
            ));
            continue;
        }
        good.push(BankLine { line: number, payout_id, bank_reference, amount, status, on, reason });
    }
    Ok((good, bad))
}

/// A line naming a payout an earlier line of the same file already named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateLine {
    pub line: usize,
    pub first_line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout: Option<String>,
}

/// The first line of each payout, and the later ones naming it again.
pub fn duplicates(lines: Vec<BankLine>) -> (Vec<BankLine>, Vec<DuplicateLine>) {
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept = Vec::new();
    let mut dups = Vec::new();
    for l in lines {
        match first.get(&l.key()) {
            Some(&f) => {
                dups.push(DuplicateLine { line: l.line, first_line: f, payout: l.payout_id })
            }
            None => {
                first.insert(l.key(), l.line);
                kept.push(l);
            }
        }
    }
    (kept, dups)
}

/// What one line came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LineOutcome {
    /// Recorded now: `PayoutSettled` or `PayoutFailed`.
    Matched {
        payout: String,
        status: BankStatus,
        amount: String,
        /// The payout batch it belongs to (none for a reissue or an older payout).
        #[serde(skip_serializing_if = "Option::is_none")]
        batch: Option<String>,
    },
    /// The bank paid another amount than was issued: nothing recorded, a person must look.
    AmountMismatch { payout: String, amount: String, expected: String },
    /// No payout of the caller's pool has this id (or reference).
    UnknownPayout,
    /// The payout's result was recorded before (`recorded`: settled or failed); `agrees` says
    /// whether the line says the same.
    AlreadyRecorded { payout: String, recorded: String, agrees: bool },
    /// The command refused the line (e.g. `period_sealed`): nothing recorded.
    Refused { payout: String, code: String, message: String },
}

/// Nothing to record: the line's outcome only.
fn none(answer: LineOutcome) -> Result<Decided<LineOutcome>, PayoutError> {
    Ok(Decided { append: None, answer })
}

/// Reconciles one line against the ledger and, when it matches an open payout, records the
/// bank's result. Its own command (a savepoint within the caller's transaction).
pub async fn reconcile_line(
    db: &mut Db<'_>,
    line: &BankLine,
    pool_scope: Option<&str>,
    actor: &str,
    today: NaiveDate,
) -> Result<LineOutcome, PayoutError> {
    let Some(payout) = line.payout_id.clone() else {
        return by_reference(db, line, pool_scope).await;
    };
    // Payout ids are UUIDs; anything else (a typo, another system's number) is unknown and
    // must not reach the tag parser.
    if uuid::Uuid::parse_str(&payout).is_err() {
        return Ok(LineOutcome::UnknownPayout);
    }
    let settlement = match line.status {
        BankStatus::Settled => {
            Settlement::Settled { bank_reference: line.bank_reference.clone().unwrap_or_default() }
        }
        BankStatus::Failed => {
            Settlement::Failed { reason: line.reason.clone().unwrap_or_default() }
        }
    };
    if line.on > today {
        return Ok(LineOutcome::Refused {
            payout,
            code: "validation_failed".into(),
            message: format!("settled_on: {} is in the future", line.on),
        });
    }
    let decided = execute!(db, PayoutError, |a| {
        let found = a.read_tagged(&[payout_tag(&payout)]).await?;
        let mut issued: Option<PayoutIssued> = None;
        let mut recorded: Option<&'static str> = None;
        for e in &found.events {
            match e.event_type.as_str() {
                PayoutIssued::TYPE => {
                    let p: PayoutIssued =
                        serde_json::from_value(e.data.clone()).expect("a recorded payout");
                    if p.payout == payout {
                        issued = Some(p);
                    }
                }
                PayoutSettled::TYPE if e.data["payout"] == payout.as_str() => {
                    recorded = Some("settled")
                }
                PayoutFailed::TYPE if e.data["payout"] == payout.as_str() => {
                    recorded = Some("failed")
                }
                _ => {}
            }
        }
        let Some(issued) = issued else { return none(LineOutcome::UnknownPayout) };
        if pool_scope.is_some_and(|p| p != issued.pool) {
            return none(LineOutcome::UnknownPayout);
        }
        if let Some(recorded) = recorded {
            let agrees = matches!(
                (recorded, &line.status),
                ("settled", BankStatus::Settled) | ("failed", BankStatus::Failed)
            );
            return none(LineOutcome::AlreadyRecorded {
                payout: payout.clone(),
                recorded: recorded.to_string(),
                agrees,
            });
        }
        if line.on < issued.paid_on {
            return none(LineOutcome::Refused {
                payout: payout.clone(),
                code: "validation_failed".into(),
                message: format!(
                    "settled_on: {} is before the payout was issued ({})",
                    line.on, issued.paid_on
                ),
            });
        }
        if issued.amount != line.amount {
            return none(LineOutcome::AmountMismatch {
                payout: payout.clone(),
                amount: format!("{:.2}", line.amount),
                expected: format!("{:.2}", issued.amount),
            });
        }
        let (app, version) =
            read_applications(a, std::slice::from_ref(&issued.application)).await?.remove(0);
        let condition = super::periods::open_periods(a, &[(app.pool.clone(), line.on)]).await??;
        let appending = Append {
            events: vec![settlement_event(&app, &issued, &settlement, line.on, actor)],
            expected: vec![(
                super::applications::application_stream(&app.id),
                ExpectedVersion::Exact(version),
            )],
            condition: Some(condition),
        };
        Ok(Decided::append(
            appending,
            LineOutcome::Matched {
                payout: payout.clone(),
                status: line.status.clone(),
                amount: format!("{:.2}", line.amount),
                batch: issued.batch.clone(),
            },
        ))
    });
    match decided {
        Err(e @ (PayoutError::Store(_) | PayoutError::Database(_))) => Err(e),
        Err(e) => {
            Ok(LineOutcome::Refused { payout, code: e.code().into(), message: e.to_string() })
        }
        Ok(outcome) => Ok(outcome),
    }
}

/// A line with a bank reference and no payout id: it can only be a payout already settled
/// under that reference (nothing else tells which payout it is).
async fn by_reference(
    db: &mut Db<'_>,
    line: &BankLine,
    pool_scope: Option<&str>,
) -> Result<LineOutcome, PayoutError> {
    let reference = line.bank_reference.clone().unwrap_or_default();
    execute!(db, PayoutError, |a| {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT payout, pool, status FROM payouts WHERE bank_reference = $1 LIMIT 1",
        )
        .bind(&reference)
        .fetch_optional(a.conn())
        .await?;
        let answer = match row {
            Some((payout, pool, status)) if pool_scope.is_none_or(|p| p == pool) => {
                LineOutcome::AlreadyRecorded {
                    payout,
                    agrees: line.status == BankStatus::Settled && status == "settled",
                    recorded: status,
                }
            }
            _ => LineOutcome::UnknownPayout,
        };
        Ok(Decided { append: None, answer })
    })
}

/// An issued payout the bank has not answered for `days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unanswered {
    pub payout: String,
    pub application: String,
    pub county: String,
    pub amount: String,
    pub paid_on: NaiveDate,
    pub days: i64,
}

/// The reconciliation report (对账结果) of one file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciliation {
    /// `utf-8` or `gbk`.
    pub encoding: &'static str,
    /// Lines read besides the header and blank lines.
    pub lines: usize,
    /// Payouts whose result this import recorded.
    pub recorded: usize,
    pub matched: Vec<serde_json::Value>,
    pub amount_mismatch: Vec<serde_json::Value>,
    pub unknown_payout: Vec<serde_json::Value>,
    pub duplicate_line: Vec<DuplicateLine>,
    pub already_recorded: Vec<serde_json::Value>,
    /// Lines that do not read (column and rule named).
    pub invalid: Vec<InvalidLine>,
    /// Lines a command refused (e.g. `period_sealed`).
    pub refused: Vec<serde_json::Value>,
    pub unanswered_after_days: u32,
    /// Payouts of the pool issued at least that many days ago, still without a result, and not
    /// in this file.
    pub unanswered: Vec<Unanswered>,
    /// Payout batches this file answered in full, closed now (`PayoutBatchReconciled`):
    /// `{batch, settled, settled_amount, failed, failed_amount}`. A batch never marked sent
    /// is not closed (`batch_not_sent`); `POST /v1/payouts/batches/{id}/reconciled` closes
    /// it once it is.
    pub reconciled_batches: Vec<serde_json::Value>,
}

/// Imports a bank file: reads it, reconciles every line (each its own command, in `db`), and
/// lists the payouts still unanswered after `unanswered_after_days`. `pool_scope`: the caller's
/// pool (a payout of another pool is unknown to it); `None` for the CLI, which sees all.
pub async fn import(
    db: &mut Db<'_>,
    bytes: &[u8],
    pool_scope: Option<&str>,
    unanswered_after_days: u32,
    actor: &str,
    today: NaiveDate,
) -> Result<Reconciliation, ImportError> {
    let (text, encoding) = decode(bytes)?;
    let (lines, invalid) = parse(&text)?;
    let mut report = Reconciliation {
        encoding,
        lines: lines.len() + invalid.len(),
        invalid,
        unanswered_after_days,
        ..Reconciliation::default()
    };
    let (lines, dups) = duplicates(lines);
    report.duplicate_line = dups;
    let mut in_file: Vec<String> = Vec::new();
    let mut answered_batches: Vec<String> = Vec::new();
    for l in &lines {
        let outcome =
            reconcile_line(db, l, pool_scope, actor, today).await.map_err(|e| match e {
                PayoutError::Store(e) => ImportError::Store(e),
                PayoutError::Database(e) => ImportError::Database(e),
                other => ImportError::Invalid { field: "body", message: other.to_string() },
            })?;
        let mut v = serde_json::to_value(&outcome).expect("outcomes serialise");
        let obj = v.as_object_mut().expect("an outcome is an object");
        obj.remove("outcome");
        obj.insert("line".into(), l.line.into());
        if let Some(r) = &l.bank_reference {
            obj.insert("bank_reference".into(), r.clone().into());
        }
        match outcome {
            LineOutcome::Matched { payout, batch, .. } => {
                answered_batches.extend(batch);
                report.recorded += 1;
                in_file.push(payout);
                report.matched.push(v);
            }
            LineOutcome::AmountMismatch { payout, .. } => {
                in_file.push(payout);
                report.amount_mismatch.push(v);
            }
            LineOutcome::UnknownPayout => {
                if let Some(id) = &l.payout_id {
                    obj.insert("payout_id".into(), id.clone().into());
                }
                report.unknown_payout.push(v);
            }
            LineOutcome::AlreadyRecorded { payout, .. } => {
                in_file.push(payout);
                report.already_recorded.push(v);
            }
            LineOutcome::Refused { payout, .. } => {
                in_file.push(payout);
                report.refused.push(v);
            }
        }
    }
    answered_batches.sort();
    answered_batches.dedup();
    for batch in answered_batches {
        match super::batches::reconcile_in(db, &batch, actor, today).await {
            Ok(r) => report.reconciled_batches.push(serde_json::json!({
                "batch": r.batch, "settled": r.settled,
                "settled_amount": format!("{:.2}", r.settled_amount), "failed": r.failed,
                "failed_amount": format!("{:.2}", r.failed_amount),
            })),
            // Still waiting for other answers, or never marked sent: nothing to close yet.
            Err(PayoutError::Batch(_)) => {}
            Err(PayoutError::Store(e)) => return Err(ImportError::Store(e)),
            Err(PayoutError::Database(e)) => return Err(ImportError::Database(e)),
            Err(other) => {
                return Err(ImportError::Invalid { field: "body", message: other.to_string() })
            }
        }
    }
    // PostgreSQL's dates start in 4713 BC, chrono's much earlier: a cutoff before the year 1
    // (days beyond any calendar) means every issued payout is recent.
    let earliest = NaiveDate::from_ymd_opt(1, 1, 1).expect("a valid date");
    let cutoff = today
        .checked_sub_days(chrono::Days::new(unanswered_after_days.into()))
        .map_or(earliest, |cutoff| cutoff.max(earliest));
    let rows = execute!(db, ImportError, |a| {
        let rows: Vec<(String, String, String, Decimal, NaiveDate)> = sqlx::query_as(
            "SELECT payout, application, county, amount, paid_on FROM payouts
             WHERE status = 'issued' AND paid_on <= $1 AND ($2::text IS NULL OR pool = $2)
               AND NOT (payout = ANY($3))
             ORDER BY paid_on, payout COLLATE \"C\" LIMIT 1000",
        )
        .bind(cutoff)
        .bind(pool_scope)
        .bind(&in_file)
        .fetch_all(a.conn())
        .await?;
        Ok(Decided { append: None, answer: rows })
    })?;
    report.unanswered = rows
        .into_iter()
        .map(|(payout, application, county, amount, paid_on)| Unanswered {
            payout,
            application,
            county,
            amount: format!("{amount:.2}"),
            paid_on,
            days: (today - paid_on).num_days(),
        })
        .collect();
    Ok(report)
}

impl super::CommandError for ImportError {
    fn store(&self) -> Option<&crate::store::AppendError> {
        match self {
            ImportError::Store(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_headers_map_to_the_columns_and_bad_lines_name_their_column() {
        let text = "\u{feff}业务编号,交易金额,处理结果,交易日期,交易流水号,失败原因\r\n\
                    p1,\"1,500.00\",成功,2024/11/13,B1,\r\n\
                    p2,600,失败,20241114,,账户已销户\r\n\
                    p3,abc,成功,2024-11-13,B3,\r\n\
                    p4,600.00,待定,2024-11-13,B4,\r\n\
                    p5,600.00,失败,2024-11-13,B5,\r\n";
        let (good, bad) = parse(text.trim_start_matches('\u{feff}')).unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!((good[0].line, good[0].amount.to_string()), (2, "1500.00".into()));
        assert_eq!(good[1].status, BankStatus::Failed);
        assert_eq!(good[1].on.to_string(), "2024-11-14");
        let named: Vec<(usize, &str)> = bad.iter().map(|b| (b.line, b.field)).collect();
        assert_eq!(named, [(4, "amount"), (5, "status"), (6, "reason")]);
    }

    #[test]
    fn a_header_without_amount_refuses_the_file() {
        assert!(matches!(
            parse("payout_id,status,settled_on\n"),
            Err(ImportError::Invalid { field: "header", .. })
        ));
    }

    #[test]
    fn gbk_bytes_decode_and_say_so() {
        let (bytes, _, _) = encoding_rs::GBK.encode("业务编号,金额\n");
        let (text, encoding) = decode(&bytes).unwrap();
        assert_eq!((text.as_str(), encoding), ("业务编号,金额\n", "gbk"));
        assert_eq!(decode("a,b".as_bytes()).unwrap().1, "utf-8");
    }

    #[test]
    fn later_lines_naming_the_same_payout_are_duplicates_of_the_first() {
        let (lines, _) =
            parse("payout_id,amount,status,settled_on,bank_reference\np1,1,settled,2024-11-01,B1\np1,1,settled,2024-11-01,B1\np2,1,settled,2024-11-01,B2\n")
                .unwrap();
        let (kept, dups) = duplicates(lines);
        assert_eq!(kept.len(), 2);
        assert_eq!((dups[0].line, dups[0].first_line), (3, 2));
    }
}
