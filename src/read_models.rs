//! Read models kept in step with the log inside the appending transaction (inline
//! projections). Each mirrors a pure fold of the `projections` crate, which is its rebuild:
//! the quota (`projections::pools`, migration 0002), and an application's whole life
//! (migration 0003): `application_status` and the party tables (`projections::applications`,
//! `persons`), `notices`, `notice_lines` and `objections` (`notices`), `payouts` (`payouts`),
//! `spending` (`spending`).
//!
//! Rows an event creates whole are built by the fold itself, from that one event, so the two
//! cannot disagree on how a row looks; updates are SQL, and `tests/read_models.rs` holds them
//! to the fold.

use chrono::NaiveDate;
use events::application::{
    ApplicationApproved, ApplicationCleared, ApplicationNoticed, ApplicationRejected,
    ApplicationSubmitted, ApplicationWithdrawn, NoticeClosed, NoticeOpened, ObjectionFiled,
    ObjectionResolved, PayoutFailed, PayoutIssued, PayoutSettled, RecoveryRecorded,
};
use events::setup::ExpansionQuotaSet;
use events::DomainEvent;
use projections::applications::{Applications, Status, StatusRow};
use projections::notices::{NoticeLineRow, NoticeRow, ObjectionRow};
use projections::payouts::PayoutRow;
use projections::persons::{CertificateRow, SlotRow};
use projections::spending::{month, Figures, SpendingKey};
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::store::NewEvent;

/// One row of `quota_usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub pool: String,
    pub year: i32,
    pub cap: Decimal,
    pub committed: Decimal,
    pub paid: Decimal,
    pub recovered: Decimal,
}

impl QuotaRow {
    pub fn remaining(&self) -> Decimal {
        self.cap - self.committed - self.paid + self.recovered
    }
}

fn decode<E: DomainEvent>(e: &NewEvent) -> E {
    E::deserialize(&e.data).expect("the command built this event")
}

async fn release(
    conn: &mut PgConnection,
    application: &str,
    paid: bool,
) -> Result<(), sqlx::Error> {
    let held: Option<(String, i32, Decimal)> = sqlx::query_as(
        "DELETE FROM quota_reservations WHERE application = $1 RETURNING pool, year, amount",
    )
    .bind(application)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((pool, year, amount)) = held {
        let paid_delta = if paid { amount } else { Decimal::ZERO };
        sqlx::query(
            "UPDATE quota_usage SET committed = committed - $3, paid = paid + $4 WHERE pool = $1 AND year = $2",
        )
        .bind(pool)
        .bind(year)
        .bind(amount)
        .bind(paid_delta)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves an application to `status` in every table that shows it, in one round trip.
/// `paid` is added to the money issued; `notice` is set when given.
async fn set_status(
    conn: &mut PgConnection,
    application: &str,
    status: Status,
    paid: Decimal,
    notice: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH a AS (UPDATE application_status SET status = $2, paid = paid + $3, notice = COALESCE($4, notice) WHERE application = $1),
              s AS (UPDATE party_slots SET status = $2 WHERE application = $1)
         UPDATE person_certificates SET status = $2 WHERE application = $1",
    )
    .bind(application)
    .bind(status.as_str())
    .bind(paid)
    .bind(notice)
    .execute(conn)
    .await?;
    Ok(())
}

async fn submitted(conn: &mut PgConnection, e: &NewEvent) -> Result<(), sqlx::Error> {
    let mut one = Applications::default();
    one.apply(&e.event_type, &e.data).expect("the command built this event");
    let Some(app) = one.by_id.values().next() else { return Ok(()) };
    let r = app.status_row();
    let slot = projections::persons::slot_row(app);
    let certificate = projections::persons::certificate_row(app);
    sqlx::query(
        "WITH a AS (
            INSERT INTO application_status (application, program, county, pool, year, party, display_name,
                display_id, subject, level, amount, funding, policy, status, notice, submitted_on,
                submitted_by, recovered, paid)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19))
         INSERT INTO party_slots (party, year, program, application, submitted_on, slot_kind, slot_number, status)
         VALUES ($6, $5, $2, $1, $16, $20, $21, $14)",
    )
    .bind(&r.application)
    .bind(&r.program)
    .bind(&r.county)
    .bind(&r.pool)
    .bind(r.year)
    .bind(&r.party)
    .bind(&r.display_name)
    .bind(&r.display_id)
    .bind(&r.subject)
    .bind(r.level)
    .bind(r.amount)
    .bind(&r.funding)
    .bind(&r.policy)
    .bind(&r.status)
    .bind(&r.notice)
    .bind(r.submitted_on)
    .bind(&r.submitted_by)
    .bind(r.recovered)
    .bind(r.paid)
    .bind(&slot.slot_kind)
    .bind(slot.slot_number)
    .execute(&mut *conn)
    .await?;
    if let Some(c) = certificate {
        sqlx::query(
            "INSERT INTO person_certificates (party, subject, program, application, level, submitted_on, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.party)
        .bind(&c.subject)
        .bind(&c.program)
        .bind(&c.application)
        .bind(c.level)
        .bind(c.submitted_on)
        .bind(&c.status)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn notice_opened(conn: &mut PgConnection, e: &NewEvent) -> Result<(), sqlx::Error> {
    let mut one = projections::notices::Notices::default();
    one.apply(&e.event_type, &e.data).expect("the command built this event");
    for n in one.notices.values() {
        sqlx::query(
            "INSERT INTO notices (notice, county, pool, starts_on, ends_on, working_days, opened_by, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&n.notice)
        .bind(&n.county)
        .bind(&n.pool)
        .bind(n.starts_on)
        .bind(n.ends_on)
        .bind(n.working_days)
        .bind(&n.opened_by)
        .bind(&n.status)
        .execute(&mut *conn)
        .await?;
    }
    let lines = one.line_rows();
    // One statement for a notice of any length (up to a thousand lines).
    sqlx::query(
        "INSERT INTO notice_lines (notice, application, name_masked, id_number_masked, program, amount)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[])",
    )
    .bind(lines.iter().map(|l| l.notice.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.application.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.name_masked.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.id_number_masked.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.program.clone()).collect::<Vec<_>>())
    .bind(lines.iter().map(|l| l.amount).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds to a spending row, creating it, booked under the application's county, program and
/// funding as `application_status` has them.
async fn spend(
    conn: &mut PgConnection,
    pool: &str,
    application: &str,
    on: NaiveDate,
    payouts: i32,
    paid: Decimal,
    recovered: Decimal,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO spending (pool, county, program, month, funding, payouts, paid, recovered)
         SELECT $1, county, program, $3, funding, $4, $5, $6 FROM application_status WHERE application = $2
         ON CONFLICT (pool, month, county, program, funding) DO UPDATE
         SET payouts = spending.payouts + excluded.payouts, paid = spending.paid + excluded.paid,
             recovered = spending.recovered + excluded.recovered",
    )
    .bind(pool)
    .bind(application)
    .bind(month(on))
    .bind(payouts)
    .bind(paid)
    .bind(recovered)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies the events a command has just appended, in its transaction. Mirrors the folds
/// of `projections::ReadModels`.
pub async fn apply(conn: &mut PgConnection, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    for e in events {
        match e.event_type.as_str() {
            ApplicationSubmitted::TYPE => submitted(conn, e).await?,
            NoticeOpened::TYPE => notice_opened(conn, e).await?,
            ApplicationNoticed::TYPE => {
                let n: ApplicationNoticed = decode(e);
                set_status(conn, &n.application, Status::InNotice, Decimal::ZERO, Some(&n.notice))
                    .await?;
            }
            NoticeClosed::TYPE => {
                let n: NoticeClosed = decode(e);
                sqlx::query(
                    "UPDATE notices SET status = 'closed', closed_on = $2, closed_by = $3 WHERE notice = $1",
                )
                .bind(&n.notice)
                .bind(n.closed_on)
                .bind(&n.closed_by)
                .execute(&mut *conn)
                .await?;
            }
            ApplicationCleared::TYPE => {
                let c: ApplicationCleared = decode(e);
                set_status(conn, &c.application, Status::Cleared, Decimal::ZERO, None).await?;
            }
            ObjectionFiled::TYPE => {
                let o: ObjectionFiled = decode(e);
                sqlx::query(
                    "INSERT INTO objections (objection, notice, application, summary, filed_on, status)
                     VALUES ($1, $2, $3, $4, $5, 'open')",
                )
                .bind(&o.objection)
                .bind(&o.notice)
                .bind(&o.application)
                .bind(&o.summary)
                .bind(o.filed_on)
                .execute(&mut *conn)
                .await?;
            }
            ObjectionResolved::TYPE => {
                let o: ObjectionResolved = decode(e);
                let status = if o.upheld {
                    projections::notices::UPHELD
                } else {
                    projections::notices::DISMISSED
                };
                sqlx::query(
                    "UPDATE objections SET status = $2, note = $3, resolved_by = $4, resolved_on = $5 WHERE objection = $1",
                )
                .bind(&o.objection)
                .bind(status)
                .bind(&o.note)
                .bind(&o.resolved_by)
                .bind(o.resolved_on)
                .execute(&mut *conn)
                .await?;
            }
            PayoutSettled::TYPE => {
                let p: PayoutSettled = decode(e);
                sqlx::query(
                    "UPDATE payouts SET status = 'settled', bank_reference = $2, settled_on = $3 WHERE payout = $1",
                )
                .bind(&p.payout)
                .bind(&p.bank_reference)
                .bind(p.settled_on)
                .execute(&mut *conn)
                .await?;
                set_status(conn, &p.application, Status::Settled, Decimal::ZERO, None).await?;
            }
            PayoutFailed::TYPE => {
                let p: PayoutFailed = decode(e);
                // The failure is booked under the payout's own pool, county, program and funding.
                let returned: Option<Decimal> = sqlx::query_scalar(
                    "WITH p AS (
                        UPDATE payouts SET status = 'failed', failure_reason = $2, failed_on = $3
                        WHERE payout = $1
                        RETURNING pool, county, program, funding, amount),
                     s AS (
                        INSERT INTO spending (pool, county, program, month, funding, failed)
                        SELECT pool, county, program, $4, funding, amount FROM p
                        ON CONFLICT (pool, month, county, program, funding) DO UPDATE
                        SET failed = spending.failed + excluded.failed)
                     SELECT amount FROM p",
                )
                .bind(&p.payout)
                .bind(&p.reason)
                .bind(p.failed_on)
                .bind(month(p.failed_on))
                .fetch_optional(&mut *conn)
                .await?;
                set_status(
                    conn,
                    &p.application,
                    Status::PayoutFailed,
                    -returned.unwrap_or_default(),
                    None,
                )
                .await?;
            }
            ExpansionQuotaSet::TYPE => {
                let q: ExpansionQuotaSet = decode(e);
                sqlx::query("INSERT INTO quota_usage (pool, year, cap) VALUES ($1, $2, $3)")
                    .bind(&q.pool)
                    .bind(q.year)
                    .bind(q.cap)
                    .execute(&mut *conn)
                    .await?;
            }
            ApplicationApproved::TYPE => {
                let a: ApplicationApproved = decode(e);
                set_status(conn, &a.application, Status::Approved, Decimal::ZERO, None).await?;
                if a.counts_against_quota {
                    sqlx::query("INSERT INTO quota_reservations (application, pool, year, amount) VALUES ($1, $2, $3, $4)")
                        .bind(&a.application)
                        .bind(&a.pool)
                        .bind(a.year)
                        .bind(a.amount)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("UPDATE quota_usage SET committed = committed + $3 WHERE pool = $1 AND year = $2")
                        .bind(&a.pool)
                        .bind(a.year)
                        .bind(a.amount)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            ApplicationRejected::TYPE => {
                let application = decode::<ApplicationRejected>(e).application;
                set_status(conn, &application, Status::Rejected, Decimal::ZERO, None).await?;
                release(conn, &application, false).await?
            }
            ApplicationWithdrawn::TYPE => {
                let application = decode::<ApplicationWithdrawn>(e).application;
                set_status(conn, &application, Status::Withdrawn, Decimal::ZERO, None).await?;
                release(conn, &application, false).await?
            }
            PayoutIssued::TYPE => {
                let p: PayoutIssued = decode(e);
                // The payout only exists for an application this model knows, as in the fold.
                let known = sqlx::query(
                    "INSERT INTO payouts (payout, application, pool, county, program, funding, year, amount,
                         paid_on, issued_by, status)
                     SELECT $1, application, $3, county, program, funding, $4, $5, $6, $7, 'issued'
                     FROM application_status WHERE application = $2",
                )
                .bind(&p.payout)
                .bind(&p.application)
                .bind(&p.pool)
                .bind(p.year)
                .bind(p.amount)
                .bind(p.paid_on)
                .bind(&p.issued_by)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                    > 0;
                if known {
                    set_status(conn, &p.application, Status::PayoutIssued, p.amount, None).await?;
                    spend(conn, &p.pool, &p.application, p.paid_on, 1, p.amount, Decimal::ZERO)
                        .await?;
                }
                if p.counts_against_quota {
                    release(conn, &p.application, true).await?;
                }
            }
            RecoveryRecorded::TYPE => {
                let r: RecoveryRecorded = decode(e);
                // The whole amount back frees the slot: the status the fold gives.
                sqlx::query(
                    "WITH a AS (
                        UPDATE application_status
                        SET recovered = recovered + $2,
                            status = CASE WHEN recovered + $2 >= amount THEN $3 ELSE status END
                        WHERE application = $1
                        RETURNING status),
                     s AS (UPDATE party_slots SET status = a.status FROM a WHERE application = $1)
                     UPDATE person_certificates SET status = a.status FROM a WHERE application = $1",
                )
                .bind(&r.application)
                .bind(r.amount)
                .bind(Status::Recovered.as_str())
                .execute(&mut *conn)
                .await?;
                spend(conn, &r.pool, &r.application, r.recovered_on, 0, Decimal::ZERO, r.amount)
                    .await?;
                if r.counts_against_quota {
                    sqlx::query("UPDATE quota_usage SET recovered = recovered + $3 WHERE pool = $1 AND year = $2")
                        .bind(&r.pool)
                        .bind(r.year)
                        .bind(r.amount)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
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
                level, amount, funding, policy, status, notice, submitted_on, submitted_by, recovered, paid
         FROM application_status ORDER BY application COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r: &PgRow| {
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
            })
        })
        .collect()
}

/// Every row of `party_slots`, by (party, year, program, application).
pub async fn all_party_slots(conn: &mut PgConnection) -> Result<Vec<SlotRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT party, year, program, application, submitted_on, slot_kind, slot_number, status, stands
         FROM party_slots
         ORDER BY party COLLATE \"C\", year, program COLLATE \"C\", application COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SlotRow {
                party: r.try_get("party")?,
                year: r.try_get("year")?,
                program: r.try_get("program")?,
                application: r.try_get("application")?,
                submitted_on: r.try_get("submitted_on")?,
                slot_kind: r.try_get("slot_kind")?,
                slot_number: r.try_get("slot_number")?,
                status: r.try_get("status")?,
                stands: r.try_get("stands")?,
            })
        })
        .collect()
}

/// Every row of `person_certificates`, by (party, subject, program, application).
pub async fn all_person_certificates(
    conn: &mut PgConnection,
) -> Result<Vec<CertificateRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT party, subject, program, application, level, submitted_on, status, stands
         FROM person_certificates
         ORDER BY party COLLATE \"C\", subject COLLATE \"C\", program COLLATE \"C\", application COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CertificateRow {
                party: r.try_get("party")?,
                subject: r.try_get("subject")?,
                program: r.try_get("program")?,
                application: r.try_get("application")?,
                level: r.try_get("level")?,
                submitted_on: r.try_get("submitted_on")?,
                status: r.try_get("status")?,
                stands: r.try_get("stands")?,
            })
        })
        .collect()
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
        "SELECT notice, county, pool, starts_on, ends_on, working_days, opened_by, status, closed_on, closed_by
         FROM notices ORDER BY notice COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
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
            })
        })
        .collect()
}

/// Every row of `notice_lines`, by (notice, application).
pub async fn all_notice_lines(conn: &mut PgConnection) -> Result<Vec<NoticeLineRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT notice, application, name_masked, id_number_masked, program, amount FROM notice_lines
         ORDER BY notice COLLATE \"C\", application COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NoticeLineRow {
                notice: r.try_get("notice")?,
                application: r.try_get("application")?,
                name_masked: r.try_get("name_masked")?,
                id_number_masked: r.try_get("id_number_masked")?,
                program: r.try_get("program")?,
                amount: r.try_get("amount")?,
            })
        })
        .collect()
}

/// Every row of `objections`, by objection id.
pub async fn all_objections(conn: &mut PgConnection) -> Result<Vec<ObjectionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT objection, notice, application, summary, filed_on, status, note, resolved_by, resolved_on
         FROM objections ORDER BY objection COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
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
            })
        })
        .collect()
}

/// Every row of `payouts`, by payout id.
pub async fn all_payouts(conn: &mut PgConnection) -> Result<Vec<PayoutRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT payout, application, pool, county, program, funding, year, amount, paid_on, issued_by,
                status, bank_reference, settled_on, failure_reason, failed_on
         FROM payouts ORDER BY payout COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
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
            })
        })
        .collect()
}
