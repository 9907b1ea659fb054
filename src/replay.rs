//! Replay: every projection rebuilt from the log alone, as of any moment. Pure folds
//! (`projections::ReadModels`) over the log in global order, so what a replay shows at the
//! head is what the inline read models hold, and what it shows as of a past moment is what
//! they held then.

use chrono::{DateTime, Utc};
use projections::ReadModels;
use sqlx::PgConnection;

/// Events handed to the folding thread at a time.
const BATCH: i64 = 10_000;

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

/// Folds the log from the beginning up to `as_of`. `progress` is called with the position
/// read as each batch goes to the folding thread. The log is read in ONE binary `COPY` (as the
/// auditor's walk reads it: `audit::stream_rows`) while another thread folds, so PostgreSQL
/// and the folds work at the same time and no page costs a round trip.
pub async fn replay(
    conn: &mut PgConnection,
    as_of: AsOf,
    progress: impl FnMut(i64),
) -> Result<Replayed, ReplayError> {
    replay_in_pages(conn, as_of, BATCH, progress).await
}

/// [`replay`] handing `page_size` events at a time to the folding thread (tests use small
/// batches to cross many boundaries on a short log).
pub async fn replay_in_pages(
    conn: &mut PgConnection,
    as_of: AsOf,
    page_size: i64,
    mut progress: impl FnMut(i64),
) -> Result<Replayed, ReplayError> {
    let batch_len = usize::try_from(page_size.max(1)).unwrap_or(usize::MAX);
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<Folded>>(4);
    // Folds batches until the stream ends or `as_of` is passed; then it drops its receiver,
    // and the reader below reads the rest of the COPY without decoding it.
    let folding = tokio::task::spawn_blocking(move || {
        let mut out = Replayed::default();
        while let Some(batch) = batches.blocking_recv() {
            let (folded, reached_end) = fold_page(out, &batch, as_of)?;
            out = folded;
            if reached_end {
                break;
            }
        }
        Ok::<_, ReplayError>(out)
    });

    let bound = match as_of {
        AsOf::Position(n) => format!(" WHERE l.position <= {n}"),
        AsOf::Head | AsOf::Time(_) => String::new(),
    };
    let statement = format!(
        "COPY (SELECT l.position, e.event_type, e.data::text, e.recorded_at
                 FROM log l JOIN events e ON e.id = l.event_id{bound}
                ORDER BY l.position) TO STDOUT (FORMAT binary)"
    );
    let reading = async {
        let read = crate::copy_binary::stream(conn, &statement, batch_len, &sender, |last| {
            progress(last.position)
        })
        .await;
        // The folding thread ends once the stream has (no sender left).
        drop(sender);
        read
    };
    let (read, folded) = tokio::join!(reading, folding);
    let folded = folded.expect("a fold does not panic");
    // A fold's error explains a stopped read better than the read's own.
    let out = folded?;
    read?;
    Ok(out)
}

/// What a fold needs of an event: no stream, metadata or tags to decode, and the data as the
/// jsonb's text, which the folds decode straight into the event's type.
#[derive(Clone)]
struct Folded {
    position: i64,
    event_type: String,
    data: String,
    recorded_at: DateTime<Utc>,
}

impl crate::copy_binary::CopyRow for Folded {
    const COLUMNS: usize = 4;
    fn from_fields(f: &[Option<&[u8]>]) -> Result<Self, sqlx::Error> {
        use crate::copy_binary::{i64_of, need, text_of, timestamp_of};
        Ok(Folded {
            position: i64_of(need(f, 0)?)?,
            event_type: text_of(need(f, 1)?)?,
            data: text_of(need(f, 2)?)?,
            recorded_at: timestamp_of(need(f, 3)?)?,
        })
    }
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
            .apply(&e.event_type, &projections::ParsedOnce::new(&e.data))
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
