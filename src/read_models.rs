//! Read models kept in step with the log inside the appending transaction (inline
//! projections). Each mirrors a pure fold of the `projections` crate, which is its rebuild.

use events::application::{
    ApplicationApproved, ApplicationRejected, ApplicationWithdrawn, PayoutIssued, RecoveryRecorded,
};
use events::setup::ExpansionQuotaSet;
use events::DomainEvent;
use rust_decimal::Decimal;
use sqlx::PgConnection;

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

/// Applies the events a command has just appended, in its transaction. Mirrors
/// `projections::pools::Pools::apply` for the quota.
pub async fn apply(conn: &mut PgConnection, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    for e in events {
        match e.event_type.as_str() {
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
                release(conn, &decode::<ApplicationRejected>(e).application, false).await?
            }
            ApplicationWithdrawn::TYPE => {
                release(conn, &decode::<ApplicationWithdrawn>(e).application, false).await?
            }
            PayoutIssued::TYPE => {
                let p: PayoutIssued = decode(e);
                if p.counts_against_quota {
                    release(conn, &p.application, true).await?;
                }
            }
            RecoveryRecorded::TYPE => {
                let r: RecoveryRecorded = decode(e);
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
