//! Reading the log in order.

use chrono::{DateTime, NaiveDate, Utc};
use events::{Metadata, Tag};
use serde_json::Value;
use sqlx::{PgConnection, Row};

use super::{Position, ReadPoint};

/// Largest page [`read_all`] returns: bounds memory and the time one query holds a snapshot.
pub const READ_PAGE_LIMIT_MAX: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordedEvent {
    pub id: i64,
    /// Global position; `None` until the sequencer has seen the writing transaction end.
    pub position: Option<Position>,
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

const COLUMNS: &str =
    "e.id, l.position, e.stream_id, e.stream_version, e.event_type, e.schema_version, \
                       e.data, e.metadata, e.tags, e.business_date, e.recorded_at";

pub(super) fn from_row(row: &sqlx::postgres::PgRow) -> Result<RecordedEvent, sqlx::Error> {
    let metadata: Value = row.try_get("metadata")?;
    Ok(RecordedEvent {
        id: row.try_get("id")?,
        position: row.try_get::<Option<i64>, _>("position")?.map(Position),
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

/// One stream, in version order (sequenced or not yet).
pub async fn read_stream(
    conn: &mut PgConnection,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    read_streams(conn, &[stream_id]).await
}

/// Several streams in one round trip: each in version order, the streams in the order given
/// (a stream named twice is read once).
pub async fn read_streams(
    conn: &mut PgConnection,
    stream_ids: &[&str],
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    // Index lookups per stream whatever the planner estimates (LATERAL … OFFSET 0, as the
    // command's read of migration 0019 does): a join could hash whole tables on a young log.
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT s.id, min(s.n) AS n
                                 FROM unnest($1::text[]) WITH ORDINALITY AS s(id, n)
                                GROUP BY s.id) s
           CROSS JOIN LATERAL (SELECT e.* FROM events e WHERE e.stream_id = s.id OFFSET 0) e
           LEFT JOIN LATERAL (SELECT lg.position FROM log lg WHERE lg.event_id = e.id OFFSET 0) l
             ON true
          ORDER BY s.n, e.stream_version"
    );
    sqlx::query(&sql).bind(stream_ids).fetch_all(conn).await?.iter().map(from_row).collect()
}

/// Gives every event whose transaction has ended its global position (see
/// `fundledger_sequence`), and returns the head position. Runs in its own transaction.
/// Returns `None` when another sequencer is busy doing the same.
pub async fn sequence(conn: &mut PgConnection) -> Result<Option<Position>, sqlx::Error> {
    let head: Option<i64> =
        sqlx::query_scalar("SELECT fundledger_sequence()").fetch_one(conn).await?;
    Ok(head.map(Position))
}

/// The log after `after`, in global order, at most `limit` (capped at [`READ_PAGE_LIMIT_MAX`])
/// events. Only sequenced events are returned, and no event can ever be sequenced below one
/// already returned: the next page starts after the last position of this one.
pub async fn read_all(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let limit = limit.clamp(1, READ_PAGE_LIMIT_MAX);
    let sql = format!(
        "SELECT {COLUMNS} FROM log l JOIN events e ON e.id = l.event_id
          WHERE l.position > $1 ORDER BY l.position LIMIT $2"
    );
    sqlx::query(&sql)
        .bind(after.0)
        .bind(limit)
        .fetch_all(conn)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Events carrying any of `tags` and the read point to use as the
/// [`AppendCondition`](super::AppendCondition) of a decision based on them.
#[derive(Debug, Clone)]
pub struct TaggedRead {
    /// In id order, which for the events of any one tag is their commit order (writers of a
    /// tag hold its lock from insert to commit).
    pub events: Vec<RecordedEvent>,
    pub read_point: ReadPoint,
}

pub async fn read_tagged(conn: &mut PgConnection, tags: &[Tag]) -> Result<TaggedRead, sqlx::Error> {
    let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    // One statement, so the snapshot it reports is the one its rows were read under. Each
    // tag's rows, each event and its position by one index lookup, whatever the planner
    // estimates (LATERAL with OFFSET 0 is never flattened into a join that may hash whole
    // tables: migration 0019 says what that cost).
    let sql = format!(
        "SELECT snap.s::text AS read_point, {COLUMNS}
           FROM (SELECT pg_current_snapshot() AS s) snap
           LEFT JOIN LATERAL (
                SELECT DISTINCT tg.event_id
                  FROM unnest($1::text[]) AS q(tag)
                 CROSS JOIN LATERAL (SELECT t.event_id FROM event_tags t
                                      WHERE t.tag = q.tag OFFSET 0) tg
                ) d ON true
           LEFT JOIN LATERAL (SELECT * FROM events ev WHERE ev.id = d.event_id OFFSET 0) e
             ON true
           LEFT JOIN LATERAL (SELECT lg.position FROM log lg WHERE lg.event_id = e.id OFFSET 0) l
             ON true
          ORDER BY e.id"
    );
    let rows = sqlx::query(&sql).bind(&tags).fetch_all(conn).await?;
    let read_point = ReadPoint(rows[0].try_get("read_point")?);
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<i64>, _>("id")?.is_some() {
            events.push(from_row(row)?);
        }
    }
    Ok(TaggedRead { events, read_point })
}

/// The current read point, for a decision that read its state some other way (for example
/// from an inline projection in the same transaction: take the read point in the same
/// statement as that read, or before it).
pub async fn read_point(conn: &mut PgConnection) -> Result<ReadPoint, sqlx::Error> {
    let s: String =
        sqlx::query_scalar("SELECT pg_current_snapshot()::text").fetch_one(conn).await?;
    Ok(ReadPoint(s))
}

/// The position of the last sequenced event (0 for an empty log).
pub async fn head(conn: &mut PgConnection) -> Result<Position, sqlx::Error> {
    let p: Option<i64> =
        sqlx::query_scalar("SELECT max(position) FROM log").fetch_one(conn).await?;
    Ok(Position(p.unwrap_or(0)))
}
