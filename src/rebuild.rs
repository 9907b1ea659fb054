//! `fundledger rebuild`: every stored read model emptied and written again from the log,
//! through the same definition the commands use live (`projections::tables::Changes`, the
//! difference between an empty fold and the fold of the whole log).
//!
//! Safe while the service runs: the rebuild locks the read-model tables first (commands that
//! already wrote to them have committed by then; the others wait), and reads the log under
//! one snapshot taken after the lock. A command waiting on the lock adds its own changes
//! after the rebuild commits, on top of a state that did not include its events.

use projections::tables::Changes;
use projections::ReadModels;
use sqlx::{Connection, Executor, PgConnection};

use crate::read_models::TABLES;

/// Events read per round trip.
const PAGE_EVENTS_MAX: i64 = 10_000;
/// Rows written per statement.
const WRITE_ROWS_MAX: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {id}: {source}")]
    Projection { id: i64, source: projections::ProjectionError },
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub rows: u64,
}

/// Which stage a rebuild is in, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Events folded so far, of `total`.
    Folding { done: u64, total: u64 },
    /// Rows written so far, of `total`.
    Writing { done: u64, total: u64 },
}

/// Rebuilds every read model in one transaction. Needs a connection allowed to TRUNCATE the
/// read-model tables (the owner's).
pub async fn rebuild(
    conn: &mut PgConnection,
    mut progress: impl FnMut(Progress),
) -> Result<Rebuilt, RebuildError> {
    let mut tx = conn.begin().await?;
    // The lock comes before the snapshot (REPEATABLE READ takes it at the first query), so
    // every event whose changes are in the tables is in what the rebuild reads.
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
    tx.execute(format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", TABLES.join(", ")).as_str())
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *tx).await?;
    let total = u64::try_from(total).unwrap_or(0);
    let mut models = ReadModels::default();
    let mut after = 0i64;
    let mut events = 0u64;
    loop {
        // In insertion order: for the events of any one aggregate, their order. The data as
        // the jsonb's text, which the folds decode straight into each event's type.
        let page: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, event_type, data::text FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(PAGE_EVENTS_MAX)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (id, event_type, data) in &page {
            models
                .apply(event_type, &projections::ParsedOnce::new(data))
                .map_err(|source| RebuildError::Projection { id: *id, source })?;
        }
        events += page.len() as u64;
        progress(Progress::Folding { done: events, total });
    }
    tx.execute(format!("TRUNCATE {}", TABLES.join(", ")).as_str()).await?;
    let all = Changes::all(&models);
    let rows = write_in_chunks(&mut tx, &all, &mut progress).await?;
    tx.commit().await?;
    Ok(Rebuilt { events, rows })
}

/// Writes `all` a few thousand rows per statement.
async fn write_in_chunks(
    conn: &mut PgConnection,
    all: &Changes,
    progress: &mut impl FnMut(Progress),
) -> Result<u64, sqlx::Error> {
    let total = (all.application_status.len()
        + all.notices.len()
        + all.notice_lines.len()
        + all.objections.len()
        + all.payouts.len()
        + all.quota_usage.len()
        + all.spending.len()
        + all.ledger_entries.len()) as u64;
    let mut done = 0u64;
    macro_rules! chunks {
        ($field:ident) => {
            for rows in all.$field.chunks(WRITE_ROWS_MAX) {
                let chunk = Changes { $field: rows.to_vec(), ..Changes::default() };
                crate::read_models::write(&mut *conn, &chunk).await?;
                done += rows.len() as u64;
                progress(Progress::Writing { done, total });
            }
        };
    }
    chunks!(application_status);
    chunks!(notices);
    chunks!(notice_lines);
    chunks!(objections);
    chunks!(payouts);
    chunks!(quota_usage);
    chunks!(spending);
    chunks!(ledger_entries);
    Ok(done)
}
