//! Replay: every projection rebuilt from the log alone, as of any moment. Pure folds
//! (`projections::ReadModels`) over the log in global order, so what a replay shows at the
//! head is what the inline read models hold, and what it shows as of a past moment is what
//! they held then.

use chrono::{DateTime, Utc};
use projections::ReadModels;
use sqlx::PgConnection;

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
/// the position reached. The next page is read while this one is folded on another thread, so
/// the database and the folds work at the same time.
pub async fn replay(
    conn: &mut PgConnection,
    as_of: AsOf,
    progress: impl FnMut(i64),
) -> Result<Replayed, ReplayError> {
    replay_in_pages(conn, as_of, PAGE, progress).await
}

/// [`replay`] reading `page_size` events per round trip (tests use small pages to cross many
/// page boundaries on a short log).
pub async fn replay_in_pages(
    conn: &mut PgConnection,
    as_of: AsOf,
    page_size: i64,
    mut progress: impl FnMut(i64),
) -> Result<Replayed, ReplayError> {
    let mut out = Replayed::default();
    let mut page = read_page(conn, 0, page_size).await?;
    loop {
        let Some(last) = page.last() else {
            return Ok(out);
        };
        let after = last.position;
        let folding = tokio::task::spawn_blocking(move || fold_page(out, &page, as_of));
        let (next, folded) = tokio::join!(read_page(conn, after, page_size), folding);
        let (folded, reached_end) = folded.expect("a fold does not panic")?;
        out = folded;
        if reached_end {
            return Ok(out);
        }
        progress(out.position);
        page = next?;
    }
}

/// What a fold needs of an event: no stream, metadata or tags to decode, and the data as the
/// jsonb's text, which each fold decodes straight into the event's type.
struct Folded {
    position: i64,
    event_type: String,
    data: String,
    recorded_at: DateTime<Utc>,
}

/// The `limit` positions after `after`, only the columns a fold reads.
async fn read_page(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<Folded>, sqlx::Error> {
    let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT l.position, e.event_type, e.data::text, e.recorded_at
           FROM log l JOIN events e ON e.id = l.event_id
          WHERE l.position > $1 ORDER BY l.position LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(position, event_type, data, recorded_at)| Folded {
            position,
            event_type,
            data,
            recorded_at,
        })
        .collect())
}

/// Folds one page into `out`; `true` when `as_of` was reached inside it.
fn fold_page(
    mut out: Replayed,
    page: &[Folded],
    as_of: AsOf,
) -> Result<(Replayed, bool), ReplayError> {
    for e in page {
        let position = e.position;
        let past = match as_of {
            AsOf::Head => false,
            AsOf::Position(n) => position > n,
            AsOf::Time(t) => e.recorded_at > t,
        };
        if past {
            return Ok((out, true));
        }
        out.models
            .apply(&e.event_type, e.data.as_str())
            .map_err(|source| ReplayError::Projection { position, source })?;
        out.position = position;
    }
    Ok((out, false))
}

/// What [`replay_of`] folded: the models of the events it read, the last position among
/// them (0: none), and how many events it read.
#[derive(Debug, Default)]
pub struct ReplayedOf {
    pub models: ReadModels,
    pub position: i64,
    pub events_read: usize,
}

/// Folds only the sequenced events carrying one of `tags` or in one of `streams`, in log order,
/// up to `as_of`: a read as long as those events, not as the log. For a read model that only
/// such events change (a pool's quota in a year: the pool's stream and the tag
/// `pool:<pool>/year:<year>`, which every event moving its money carries) it equals the fold
/// of the whole log up to the same moment. With [`AsOf::Time`] it stops at the first of THESE
/// events recorded after the moment.
pub async fn replay_of(
    conn: &mut PgConnection,
    tags: &[events::Tag],
    streams: &[&str],
    as_of: AsOf,
) -> Result<ReplayedOf, ReplayError> {
    use sqlx::Row;
    let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    let limit = match as_of {
        AsOf::Position(n) => n,
        AsOf::Head | AsOf::Time(_) => i64::MAX,
    };
    // Index ranges only: the tags' rows (event_tags), the streams' rows (their unique key),
    // and each event's position (log.event_id).
    let rows = sqlx::query(
        "SELECT l.position, e.event_type, e.data, e.recorded_at
           FROM log l JOIN events e ON e.id = l.event_id
          WHERE l.event_id IN (SELECT t.event_id FROM event_tags t WHERE t.tag = ANY ($1)
                               UNION
                               SELECT s.id FROM events s WHERE s.stream_id = ANY ($2))
            AND l.position <= $3
          ORDER BY l.position",
    )
    .bind(&tags)
    .bind(streams)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let mut out = ReplayedOf::default();
    for row in &rows {
        let position: i64 = row.try_get("position")?;
        let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
        if matches!(as_of, AsOf::Time(t) if recorded_at > t) {
            break;
        }
        let event_type: String = row.try_get("event_type")?;
        let data: serde_json::Value = row.try_get("data")?;
        out.models
            .apply(&event_type, &data)
            .map_err(|source| ReplayError::Projection { position, source })?;
        out.position = position;
        out.events_read += 1;
    }
    Ok(out)
}
