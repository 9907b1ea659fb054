//! The stored read models, written in the appending transaction (inline projections) and by
//! `fundledger rebuild`, always from [`Changes`]: the difference of the pure folds of the
//! `projections` crate (`projections::tables`), never a fold restated in SQL. Each table
//! exists because a query reads it:
//!
//! | table | read by |
//! |---|---|
//! | `quota_usage` | review (the cap), `GET /v1/pools/{pool}/quotas/{year}` |
//! | `application_status` | `GET /v1/applications` (the list) |
//! | `notices`, `notice_lines`, `objections` | `GET /v1/notices/{id}` |
//! | `payouts` | `GET /v1/payouts/{id}` |
//! | `spending` | `GET /v1/reports/spending` |
//! | `ledger_entries` | `GET /v1/reports/trial-balance` |

use projections::applications::StatusRow;
use projections::entries::{EntryKey, Sides};
use projections::notices::{NoticeLineRow, NoticeRow, ObjectionRow};
use projections::payouts::PayoutRow;
pub use projections::pools::QuotaRow;
use projections::spending::{Figures, SpendingKey};
use projections::tables::Changes;
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

/// `col = excluded.col, …`: a row written whole replaces every column but its key.
fn replace_all(columns: &[&str]) -> String {
    columns.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ")
}

const STATUS_COLUMNS: &[&str] = &[
    "program",
    "county",
    "pool",
    "year",
    "party",
    "display_name",
    "display_id",
    "subject",
    "level",
    "amount",
    "funding",
    "policy",
    "status",
    "notice",
    "submitted_on",
    "submitted_by",
    "recovered",
    "paid",
    "slot",
    "payouts",
    "open_objections",
];
const NOTICE_COLUMNS: &[&str] = &[
    "county",
    "pool",
    "starts_on",
    "ends_on",
    "working_days",
    "opened_by",
    "status",
    "closed_on",
    "closed_by",
    "cleared",
    "calendar",
];
const LINE_COLUMNS: &[&str] = &["name_masked", "id_number_masked", "program", "amount", "payees"];
const OBJECTION_COLUMNS: &[&str] = &[
    "notice",
    "application",
    "summary",
    "filed_on",
    "status",
    "note",
    "resolved_by",
    "resolved_on",
    "received_on",
];
const PAYOUT_COLUMNS: &[&str] = &[
    "application",
    "pool",
    "county",
    "program",
    "funding",
    "year",
    "amount",
    "paid_on",
    "issued_by",
    "status",
    "bank_reference",
    "settled_on",
    "failure_reason",
    "failed_on",
    "payee_credit_code",
    "payee_name",
];

fn write_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| format!("WITH {} SELECT 1", write_ctes(1, "")))
}

/// The upserts of [`write`] as common table expressions, their eight parameters numbered from
/// `first`; `gate` is joined to every source (", gate": see [`append_and_write`]).
fn write_ctes(first: usize, gate: &str) -> String {
    let source = |n: usize, table: &str| {
        format!("SELECT r.* FROM jsonb_populate_recordset(NULL::{table}, ${}) r{gate}", first + n)
    };
    format!(
        "s AS (INSERT INTO application_status {s}
               ON CONFLICT (application) DO UPDATE SET {status}),
         n AS (INSERT INTO notices {n}
               ON CONFLICT (notice) DO UPDATE SET {notice}),
         l AS (INSERT INTO notice_lines {l}
               ON CONFLICT (notice, application) DO UPDATE SET {line}),
         o AS (INSERT INTO objections {o}
               ON CONFLICT (objection) DO UPDATE SET {objection}),
         p AS (INSERT INTO payouts {p}
               ON CONFLICT (payout) DO UPDATE SET {payout}),
         -- Totals: differences added to what is stored. Quota rows are created by the quota
         -- being set (a difference of the cap alone); the other differences update them, and
         -- the cap's CHECK holds on the sum. Spending differences are never negative, so a
         -- new row is the difference itself.
         qd AS ({qd}),
         qu AS (UPDATE quota_usage t SET cap = t.cap + qd.cap, committed = t.committed + qd.committed,
                    paid = t.paid + qd.paid, recovered = t.recovered + qd.recovered
                FROM qd WHERE t.pool = qd.pool AND t.year = qd.year RETURNING t.pool, t.year),
         qi AS (INSERT INTO quota_usage SELECT qd.* FROM qd
                WHERE NOT EXISTS (SELECT 1 FROM quota_usage t WHERE t.pool = qd.pool AND t.year = qd.year)),
         sp AS (INSERT INTO spending AS t {sp}
                ON CONFLICT (pool, month, county, program, funding) DO UPDATE
                SET payouts = t.payouts + excluded.payouts, paid = t.paid + excluded.paid,
                    failed = t.failed + excluded.failed, recovered = t.recovered + excluded.recovered),
         le AS (INSERT INTO ledger_entries AS t {le}
                ON CONFLICT (pool, month, account) DO UPDATE
                SET debit = t.debit + excluded.debit, credit = t.credit + excluded.credit)",
        s = source(0, "application_status"),
        n = source(1, "notices"),
        l = source(2, "notice_lines"),
        o = source(3, "objections"),
        p = source(4, "payouts"),
        qd = source(5, "quota_usage"),
        sp = source(6, "spending"),
        le = source(7, "ledger_entries"),
        status = replace_all(STATUS_COLUMNS),
        notice = replace_all(NOTICE_COLUMNS),
        line = replace_all(LINE_COLUMNS),
        objection = replace_all(OBJECTION_COLUMNS),
        payout = replace_all(PAYOUT_COLUMNS),
    )
}

/// The append, the read models' changes and the new persons' data keys in ONE statement (one
/// round trip instead of two): `fundledger_append` runs first, and every upsert's rows are
/// joined to `gate`, a count of what it appended, so no read-model row is written (or locked)
/// before the append has taken its locks and passed its condition; a refused append fails the
/// whole statement. A data key is recorded exactly when the events sealed under it are.
///
/// The upserts run under the statement's snapshot, taken before the append waited for its
/// locks. That is safe here: every row they write is keyed by a stream or tag the command
/// read and conditioned its append on, so any writer of the same rows that committed after
/// the read point makes the append fail (a conflict, retried) before a row is written, and
/// the increments (`quota_usage`, `spending`) and the `ON CONFLICT` upserts work on the latest
/// row versions anyway. A data key inserted by another command meanwhile makes the insert
/// fail on `person_keys`' keys (a conflict, retried: the next attempt reads that key).
pub async fn append_and_write(
    conn: &mut PgConnection,
    appending: &crate::store::Append,
    changes: &Changes,
    data_keys: &[crate::personal::data_keys::NewDataKey],
) -> Result<crate::store::Appended, crate::store::AppendError> {
    if changes.is_empty() && data_keys.is_empty() {
        return crate::store::append(conn, appending).await;
    }
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let first = crate::store::APPEND_PARAMS + 1;
        format!(
            "WITH appended AS ({}),
             gate AS (SELECT count(*) AS appended_events FROM appended),
             {},
             pk AS (INSERT INTO person_keys (person_key, generation, sealed_key)
                    SELECT r.person_key, r.generation, r.sealed_key
                      FROM jsonb_to_recordset(${}) AS r(person_key text, generation integer, sealed_key text), gate)
             SELECT event_id, event_stream_id, event_stream_version FROM appended",
            crate::store::APPEND_SQL,
            write_ctes(first, ", gate"),
            first + WRITE_PARAMS,
        )
    });
    crate::store::append_with(
        conn,
        appending,
        sql,
        vec![
            json(&changes.application_status),
            json(&changes.notices),
            json(&changes.notice_lines),
            json(&changes.objections),
            json(&changes.payouts),
            json(&changes.quota_usage),
            json(&changes.spending),
            json(&changes.ledger_entries),
            json(data_keys),
        ],
    )
    .await
}

/// The number of parameters of [`write_ctes`].
const WRITE_PARAMS: usize = 8;

fn json<T: serde::Serialize>(rows: &[T]) -> serde_json::Value {
    serde_json::to_value(rows).expect("read model rows serialise")
}

/// Writes what some events change in the read models, in one statement (none when nothing
/// changes).
pub async fn write(conn: &mut PgConnection, changes: &Changes) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query(write_sql())
        .bind(json(&changes.application_status))
        .bind(json(&changes.notices))
        .bind(json(&changes.notice_lines))
        .bind(json(&changes.objections))
        .bind(json(&changes.payouts))
        .bind(json(&changes.quota_usage))
        .bind(json(&changes.spending))
        .bind(json(&changes.ledger_entries))
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored read models, emptied for a rebuild (the owner's connection: the service role
/// may not truncate).
pub const TABLES: &[&str] = &[
    "application_status",
    "notices",
    "notice_lines",
    "objections",
    "payouts",
    "quota_usage",
    "spending",
    "ledger_entries",
];

/// What an approval reads holding its pool's lock ([`lock_quota`]).
#[derive(Debug, Clone)]
pub struct LockedQuota {
    /// The snapshot the row was read under: the approval's append is conditioned on the
    /// quota's tag after it.
    pub read_point: crate::store::ReadPoint,
    /// The ids of the events tagged with the id tag asked for (the published policies').
    pub tag_ids: Vec<i64>,
    /// `None`: no quota is set for the pool and year.
    pub quota: Option<QuotaRow>,
}

/// Takes the lock of `quota_tag` (one pool's quota in one year: approvals of the pool queue on
/// it), then reads in one statement, holding it, the read point, the quota row of `pool` and
/// `year`, and the ids of the events tagged `id_tag`: one round trip where a lock, the row
/// and the ids took three, all while the pool's other approvals wait
/// (`fundledger_lock_quota`, migration 0020).
pub async fn lock_quota(
    conn: &mut PgConnection,
    quota_tag: &events::Tag,
    pool: &str,
    year: i32,
    id_tag: &str,
) -> Result<LockedQuota, crate::store::AppendError> {
    type Row = (
        String,
        Vec<i64>,
        bool,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
        Option<Decimal>,
    );
    let row: Row = sqlx::query_as("SELECT * FROM fundledger_lock_quota($1, $2, $3, $4)")
        .bind(crate::store::tag_lock_keys(std::slice::from_ref(quota_tag)))
        .bind(pool)
        .bind(year)
        .bind(id_tag)
        .fetch_one(conn)
        .await
        .map_err(crate::store::classify)?;
    let (read_point, tag_ids, found, cap, committed, paid, recovered) = row;
    let quota = match (found, cap, committed, paid, recovered) {
        (true, Some(cap), Some(committed), Some(paid), Some(recovered)) => {
            Some(QuotaRow { pool: pool.to_string(), year, cap, committed, paid, recovered })
        }
        _ => None,
    };
    Ok(LockedQuota { read_point: crate::store::ReadPoint(read_point), tag_ids, quota })
}

/// The quota of a pool and year, as kept inline.
pub async fn quota(
    conn: &mut PgConnection,
    pool: &str,
    year: i32,
) -> Result<Option<QuotaRow>, sqlx::Error> {
    let row: Option<(String, i32, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT pool, year, cap, committed, paid, recovered FROM quota_usage WHERE pool = $1 AND year = $2",
    )
    .bind(pool)
    .bind(year)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(pool, year, cap, committed, paid, recovered)| QuotaRow {
        pool,
        year,
        cap,
        committed,
        paid,
        recovered,
    }))
}

/// Every quota row, ordered by pool and year.
pub async fn all_quotas(conn: &mut PgConnection) -> Result<Vec<QuotaRow>, sqlx::Error> {
    let rows: Vec<(String, i32, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT pool, year, cap, committed, paid, recovered FROM quota_usage ORDER BY pool, year",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(pool, year, cap, committed, paid, recovered)| QuotaRow {
            pool,
            year,
            cap,
            committed,
            paid,
            recovered,
        })
        .collect())
}

/// Every row of `application_status`, by application id.
pub async fn all_application_statuses(
    conn: &mut PgConnection,
) -> Result<Vec<StatusRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT application, program, county, pool, year, party, display_name, display_id, subject,
                level, amount, funding, policy, status, notice, submitted_on, submitted_by, recovered, paid,
                slot, payouts, open_objections
         FROM application_status ORDER BY application COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(status_row).collect()
}

fn status_row(r: &PgRow) -> Result<StatusRow, sqlx::Error> {
    Ok(StatusRow {
        application: r.try_get("application")?,
        program: r.try_get("program")?,
        county: r.try_get("county")?,
        pool: r.try_get("pool")?,
        year: r.try_get("year")?,
        party: r.try_get("party")?,
        display_name: r.try_get("display_name")?,
        display_id: r.try_get("display_id")?,
        subject: r.try_get("subject")?,
        level: r.try_get("level")?,
        amount: r.try_get("amount")?,
        funding: r.try_get("funding")?,
        policy: r.try_get("policy")?,
        status: r.try_get("status")?,
        notice: r.try_get("notice")?,
        submitted_on: r.try_get("submitted_on")?,
        submitted_by: r.try_get("submitted_by")?,
        recovered: r.try_get("recovered")?,
        paid: r.try_get("paid")?,
        slot: r.try_get("slot")?,
        payouts: r.try_get("payouts")?,
        open_objections: r.try_get("open_objections")?,
    })
}

/// Every row of `spending`, in primary-key order.
pub async fn all_spending(
    conn: &mut PgConnection,
) -> Result<Vec<(SpendingKey, Figures)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT pool, month, county, program, funding, payouts, paid, failed, recovered FROM spending
         ORDER BY pool COLLATE \"C\", month COLLATE \"C\", county COLLATE \"C\", program COLLATE \"C\",
                  funding COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                SpendingKey {
                    pool: r.try_get("pool")?,
                    month: r.try_get("month")?,
                    county: r.try_get("county")?,
                    program: r.try_get("program")?,
                    funding: r.try_get("funding")?,
                },
                Figures {
                    payouts: r.try_get("payouts")?,
                    paid: r.try_get("paid")?,
                    failed: r.try_get("failed")?,
                    recovered: r.try_get("recovered")?,
                },
            ))
        })
        .collect()
}

/// Every row of `notices`, by notice id.
pub async fn all_notices(conn: &mut PgConnection) -> Result<Vec<NoticeRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT notice, county, pool, starts_on, ends_on, working_days, opened_by, status, closed_on, closed_by, cleared, calendar
         FROM notices ORDER BY notice COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(notice_row).collect()
}

fn notice_row(r: &PgRow) -> Result<NoticeRow, sqlx::Error> {
    Ok(NoticeRow {
        notice: r.try_get("notice")?,
        county: r.try_get("county")?,
        pool: r.try_get("pool")?,
        starts_on: r.try_get("starts_on")?,
        ends_on: r.try_get("ends_on")?,
        working_days: r.try_get("working_days")?,
        opened_by: r.try_get("opened_by")?,
        status: r.try_get("status")?,
        closed_on: r.try_get("closed_on")?,
        closed_by: r.try_get("closed_by")?,
        cleared: r.try_get("cleared")?,
        calendar: r.try_get("calendar")?,
    })
}

/// Every row of `notice_lines`, by (notice, application).
pub async fn all_notice_lines(conn: &mut PgConnection) -> Result<Vec<NoticeLineRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT notice, application, name_masked, id_number_masked, program, amount, payees FROM notice_lines
         ORDER BY notice COLLATE \"C\", application COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(line_row).collect()
}

fn line_row(r: &PgRow) -> Result<NoticeLineRow, sqlx::Error> {
    Ok(NoticeLineRow {
        notice: r.try_get("notice")?,
        application: r.try_get("application")?,
        name_masked: r.try_get("name_masked")?,
        id_number_masked: r.try_get("id_number_masked")?,
        program: r.try_get("program")?,
        amount: r.try_get("amount")?,
        payees: r.try_get("payees")?,
    })
}

/// Every row of `objections`, by objection id.
pub async fn all_objections(conn: &mut PgConnection) -> Result<Vec<ObjectionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT objection, notice, application, summary, filed_on, status, note, resolved_by, resolved_on, received_on
         FROM objections ORDER BY objection COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(objection_row).collect()
}

fn objection_row(r: &PgRow) -> Result<ObjectionRow, sqlx::Error> {
    Ok(ObjectionRow {
        objection: r.try_get("objection")?,
        notice: r.try_get("notice")?,
        application: r.try_get("application")?,
        summary: r.try_get("summary")?,
        filed_on: r.try_get("filed_on")?,
        status: r.try_get("status")?,
        note: r.try_get("note")?,
        resolved_by: r.try_get("resolved_by")?,
        resolved_on: r.try_get("resolved_on")?,
        received_on: r.try_get("received_on")?,
    })
}

/// Every row of `payouts`, by payout id.
pub async fn all_payouts(conn: &mut PgConnection) -> Result<Vec<PayoutRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT payout, application, pool, county, program, funding, year, amount, paid_on, issued_by,
                status, bank_reference, settled_on, failure_reason, failed_on, payee_credit_code, payee_name
         FROM payouts ORDER BY payout COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(payout_row).collect()
}

fn payout_row(r: &PgRow) -> Result<PayoutRow, sqlx::Error> {
    Ok(PayoutRow {
        payout: r.try_get("payout")?,
        application: r.try_get("application")?,
        pool: r.try_get("pool")?,
        county: r.try_get("county")?,
        program: r.try_get("program")?,
        funding: r.try_get("funding")?,
        year: r.try_get("year")?,
        amount: r.try_get("amount")?,
        paid_on: r.try_get("paid_on")?,
        issued_by: r.try_get("issued_by")?,
        status: r.try_get("status")?,
        bank_reference: r.try_get("bank_reference")?,
        settled_on: r.try_get("settled_on")?,
        failure_reason: r.try_get("failure_reason")?,
        failed_on: r.try_get("failed_on")?,
        payee_credit_code: r.try_get("payee_credit_code")?,
        payee_name: r.try_get("payee_name")?,
    })
}

const STATUS_SELECT: &str =
    "SELECT application, program, county, pool, year, party, display_name, display_id, subject,
            level, amount, funding, policy, status, notice, submitted_on, submitted_by, recovered, paid,
            slot, payouts, open_objections
     FROM application_status";

/// A page of `application_status` in id order, filtered as `GET /v1/applications` asks.
pub async fn applications_page(
    conn: &mut PgConnection,
    county: Option<&str>,
    pool: Option<&str>,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<StatusRow>, sqlx::Error> {
    let sql = format!(
        "{STATUS_SELECT}
         WHERE ($1::text IS NULL OR county = $1) AND ($2::text IS NULL OR pool = $2)
           AND ($3::text IS NULL OR status = $3) AND application > coalesce($4, '')
         ORDER BY application LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(county)
        .bind(pool)
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(status_row).collect()
}

/// A notice as published, with its lines and the objections filed against it.
pub async fn notice(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<(NoticeRow, Vec<NoticeLineRow>, Vec<ObjectionRow>)>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT notice, county, pool, starts_on, ends_on, working_days, opened_by, status, closed_on, closed_by, cleared, calendar
         FROM notices WHERE notice = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "SELECT notice, application, name_masked, id_number_masked, program, amount, payees FROM notice_lines
         WHERE notice = $1 ORDER BY application",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let objections = sqlx::query(
        "SELECT objection, notice, application, summary, filed_on, status, note, resolved_by, resolved_on, received_on
         FROM objections WHERE notice = $1 ORDER BY objection",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some((
        notice_row(&row)?,
        lines.iter().map(line_row).collect::<Result<_, _>>()?,
        objections.iter().map(objection_row).collect::<Result<_, _>>()?,
    )))
}

/// One payout and the bank's result.
pub async fn payout(conn: &mut PgConnection, id: &str) -> Result<Option<PayoutRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT payout, application, pool, county, program, funding, year, amount, paid_on, issued_by,
                status, bank_reference, settled_on, failure_reason, failed_on, payee_credit_code, payee_name
         FROM payouts WHERE payout = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(payout_row).transpose()
}

/// One application's row of `application_status`.
pub async fn application(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<StatusRow>, sqlx::Error> {
    let sql = format!("{STATUS_SELECT} WHERE application = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(status_row).transpose()
}

/// A pool or county by code, with its name and (for a county) its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    pub code: String,
    pub name: String,
    pub pool: Option<String>,
}

/// Every registered pool and county, from their registration events (a few hundred at most:
/// one per city and county of a province), in code order.
pub async fn divisions(conn: &mut PgConnection) -> Result<Vec<Division>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT code, name, pool FROM (
           SELECT coalesce(data->>'county', data->>'pool') AS code, data->>'name' AS name,
                  CASE WHEN event_type = 'CountyRegistered' THEN data->>'pool' END AS pool
             FROM events WHERE event_type IN ('PoolRegistered', 'CountyRegistered')) d
          ORDER BY code COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(code, name, pool)| Division { code, name, pool }).collect())
}

/// Money of one month, summed over the `spending` rows asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    pub payouts: i64,
    pub paid: Decimal,
    pub failed: Decimal,
    pub recovered: Decimal,
}

impl MonthFigures {
    /// What left the fund for good: paid, less what the bank returned and what was recovered.
    pub fn net(&self) -> Decimal {
        self.paid - self.failed - self.recovered
    }
}

/// `spending` summed by month, for a pool or one county, in month order.
pub async fn spending_by_month(
    conn: &mut PgConnection,
    pool: Option<&str>,
    county: Option<&str>,
) -> Result<Vec<MonthFigures>, sqlx::Error> {
    let rows: Vec<(String, i64, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT month, sum(payouts)::int8, sum(paid), sum(failed), sum(recovered) FROM spending
          WHERE ($1::text IS NULL OR pool = $1) AND ($2::text IS NULL OR county = $2)
          GROUP BY month ORDER BY month",
    )
    .bind(pool)
    .bind(county)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(month, payouts, paid, failed, recovered)| MonthFigures {
            month,
            payouts,
            paid,
            failed,
            recovered,
        })
        .collect())
}

/// The latest notices of a pool or county, newest first, at most `limit`.
pub async fn latest_notices(
    conn: &mut PgConnection,
    pool: Option<&str>,
    county: Option<&str>,
    limit: i64,
) -> Result<Vec<NoticeRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT notice, county, pool, starts_on, ends_on, working_days, opened_by, status, closed_on, closed_by, cleared, calendar
           FROM notices WHERE ($1::text IS NULL OR pool = $1) AND ($2::text IS NULL OR county = $2)
          ORDER BY starts_on DESC, notice DESC LIMIT $3",
    )
    .bind(pool)
    .bind(county)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(notice_row).collect()
}

/// The latest applications of a pool or county, newest first (ids are time-ordered), at most
/// `limit`.
pub async fn latest_applications(
    conn: &mut PgConnection,
    pool: Option<&str>,
    county: Option<&str>,
    limit: i64,
) -> Result<Vec<StatusRow>, sqlx::Error> {
    let sql = format!(
        "{STATUS_SELECT} WHERE ($1::text IS NULL OR pool = $1) AND ($2::text IS NULL OR county = $2)
          ORDER BY application DESC LIMIT $3"
    );
    let rows = sqlx::query(&sql).bind(pool).bind(county).bind(limit).fetch_all(conn).await?;
    rows.iter().map(status_row).collect()
}

/// The last checkpoint recorded in the log (its signature is checked by `audit::verify`
/// against the trusted key, not here): what it covers, when and by which key it was signed.
pub async fn last_checkpoint(
    conn: &mut PgConnection,
) -> Result<Option<events::checkpoint::CheckpointSigned>, sqlx::Error> {
    let data: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT data FROM events WHERE event_type = 'CheckpointSigned' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(data.and_then(|d| serde_json::from_value(d).ok()))
}

/// Every row of `ledger_entries`, in primary-key order.
pub async fn all_entries(conn: &mut PgConnection) -> Result<Vec<(EntryKey, Sides)>, sqlx::Error> {
    let rows: Vec<(String, String, String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT pool, month, account, debit, credit FROM ledger_entries
         ORDER BY pool COLLATE \"C\", month COLLATE \"C\", account COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(pool, month, account, debit, credit)| {
            (EntryKey { pool, month, account }, Sides { debit, credit })
        })
        .collect())
}

/// The `ledger_entries` rows of one pool and month (`YYYY-MM`): what its trial balance sums.
pub async fn entries_of_month(
    conn: &mut PgConnection,
    pool: &str,
    month: &str,
) -> Result<Vec<(String, Sides)>, sqlx::Error> {
    let rows: Vec<(String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT account, debit, credit FROM ledger_entries WHERE pool = $1 AND month = $2
         ORDER BY account COLLATE \"C\"",
    )
    .bind(pool)
    .bind(month)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(a, debit, credit)| (a, Sides { debit, credit })).collect())
}
