//! Reading the log in order.

use chrono::{DateTime, NaiveDate, Utc};
use events::{Metadata, Tag};
use serde_json::Value;
use sqlx::{PgConnection, Row};

use super::Position;

/// Largest page [`read_all`] returns: bounds memory and the time one query holds a snapshot.
pub const READ_PAGE_LIMIT_MAX: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Metadata,
    pub tags: Vec<String>,
    pub business_date: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
}

const COLUMNS: &str = "position, stream_id, stream_version, event_type, schema_version, data, \
                       metadata, tags, business_date, recorded_at";

fn from_row(row: &sqlx::postgres::PgRow) -> Result<RecordedEvent, sqlx::Error> {
    let metadata: Value = row.try_get("metadata")?;
    Ok(RecordedEvent {
        position: Position(row.try_get("position")?),
        stream_id: row.try_get("stream_id")?,
        stream_version: row.try_get("stream_version")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        data: row.try_get("data")?,
        metadata: serde_json::from_value(metadata).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        tags: row.try_get("tags")?,
        business_date: row.try_get("business_date")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// One stream, in version order.
pub async fn read_stream(
    conn: &mut PgConnection,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
    sqlx::query(&sql)
        .bind(stream_id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// The whole log after `after`, in global order, at most `limit` (capped at
/// [`READ_PAGE_LIMIT_MAX`]) events. Positions are assigned in commit order, so a page ends
/// at a position below which nothing can ever be added: the next page starts after it.
pub async fn read_all(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let limit = limit.clamp(1, READ_PAGE_LIMIT_MAX);
    let sql =
        format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    sqlx::query(&sql)
        .bind(after.0)
        .bind(limit)
        .fetch_all(conn)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Events carrying any of `tags`, in global order, and the position to use as the
/// [`AppendCondition`](super::AppendCondition) of a decision based on them.
#[derive(Debug, Clone)]
pub struct TaggedRead {
    pub events: Vec<RecordedEvent>,
    /// The highest position read. Every event with these tags at or below it was read, and
    /// any later one will have a higher position, because positions follow commit order.
    pub position: Position,
}

pub async fn read_tagged(conn: &mut PgConnection, tags: &[Tag]) -> Result<TaggedRead, sqlx::Error> {
    let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE position IN
           (SELECT DISTINCT position FROM event_tags WHERE tag = ANY ($1))
         ORDER BY position"
    );
    let events: Vec<RecordedEvent> = sqlx::query(&sql)
        .bind(&tags)
        .fetch_all(conn)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<_, _>>()?;
    let position = events.last().map(|e| e.position).unwrap_or_default();
    Ok(TaggedRead { events, position })
}

/// The position of the last committed event (0 for an empty log).
pub async fn head(conn: &mut PgConnection) -> Result<Position, sqlx::Error> {
    let p: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(conn)
        .await?;
    Ok(Position(p.unwrap_or(0)))
}
