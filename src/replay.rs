//! Replay: every projection rebuilt from the log alone, as of any moment. Pure folds
//! (`projections::ReadModels`) over the log in global order, so what a replay shows at the
//! head is what the inline read models hold, and what it shows as of a past moment is what
//! they held then.

use chrono::{DateTime, Utc};
use projections::ReadModels;
use sqlx::PgConnection;

use crate::store::{read_all, Position};

/// Rows read per round trip.
const PAGE: i64 = 10_000;

/// Which prefix of the log to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Head,
    /// Up to and including this position.
    Position(i64),
    /// The log up to the last event recorded at or before this time (events are recorded at
    /// their transaction's start, so this is the ledger as it stood then).
    Time(DateTime<Utc>),
}

#[derive(Debug, Default)]
pub struct Replayed {
    pub models: ReadModels,
    /// The last position folded in (0: none).
    pub position: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("position {position}: {source}")]
    Projection { position: i64, source: projections::ProjectionError },
}

/// Folds the log from the beginning up to `as_of`. `progress` is called after each page with
/// the position reached.
pub async fn replay(
    conn: &mut PgConnection,
    as_of: AsOf,
    mut progress: impl FnMut(i64),
) -> Result<Replayed, ReplayError> {
    let mut out = Replayed::default();
    loop {
        let page = read_all(conn, Position(out.position), PAGE).await?;
        if page.is_empty() {
            return Ok(out);
        }
        for e in &page {
            let position = e.position.map_or(out.position + 1, |p| p.0);
            let past = match as_of {
                AsOf::Head => false,
                AsOf::Position(n) => position > n,
                AsOf::Time(t) => e.recorded_at > t,
            };
            if past {
                return Ok(out);
            }
            out.models
                .apply(&e.event_type, &e.data)
                .map_err(|source| ReplayError::Projection { position, source })?;
            out.position = position;
        }
        progress(out.position);
    }
}
