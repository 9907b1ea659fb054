//! Appending to the log. See `fundledger_append` in `migrations/0001_event_log.sql` for the
//! statement, and ARCHITECTURE.md for why the locking is correct.

use chrono::NaiveDate;
use events::{Metadata, Tag};
use serde_json::Value;
use sqlx::PgConnection;

use super::ReadPoint;

/// Most events one append may carry: a bulk import is split into appends of this size.
pub const APPEND_EVENTS_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub stream_id: String,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Metadata,
    pub tags: Vec<Tag>,
    pub business_date: Option<NaiveDate>,
}

/// What the command believes a stream's current version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event has exactly this version.
    Exact(i64),
}

impl ExpectedVersion {
    fn as_sql(self) -> i64 {
        match self {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        }
    }
}

/// "No event carrying any of `tags` was appended after `after`": the read a decision was based
/// on is still the whole truth for those tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendCondition {
    pub tags: Vec<Tag>,
    pub after: ReadPoint,
}

/// One atomic append: all events are recorded, or none.
#[derive(Debug, Clone, Default)]
pub struct Append {
    pub events: Vec<NewEvent>,
    pub expected: Vec<(String, ExpectedVersion)>,
    pub condition: Option<AppendCondition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Event id and stream version of each event, in the order given. The global position
    /// follows once the sequencer has seen the transaction end.
    pub events: Vec<(i64, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Optimistic concurrency: someone appended to the stream since the command read it.
    #[error("stream {stream} is at version {actual}, the command expected {expected}")]
    StreamVersionConflict { stream: String, expected: i64, actual: i64 },
    /// The tag condition failed: what the decision read has changed.
    #[error("event {event_id} tagged {tag} was appended after the decision read the tag")]
    TagConflict { tag: String, event_id: i64 },
    #[error("invalid append: {0}")]
    Invalid(&'static str),
    /// PostgreSQL broke a lock cycle by aborting this transaction. The lock order rules out
    /// cycles among appends; a command that locks a hot tag before reading could still meet
    /// one, and retrying from the start is then the right answer.
    #[error("the transaction was chosen to break a lock cycle; retry")]
    Deadlock,
    /// Two commands created a data key for one person at once (`person_keys`): the second
    /// reads the first's key and seals again.
    #[error("another command recorded this person's data key first; retry")]
    DataKeyConflict,
    /// A person's data key in `person_keys` does not open with the key file's master keys:
    /// the table or the key file was tampered with (the key checks rule out a wrong file).
    #[error("a person's data key does not open with the personal-data key file: {0}")]
    DataKey(String),
    /// Every attempt of a command met a concurrent writer (`COMMAND_ATTEMPTS_MAX` of them):
    /// the state it decides on is too hot right now. Nothing was recorded; the same request
    /// may be sent again.
    #[error("the command kept meeting concurrent changes and was not recorded; retry shortly")]
    Contended,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl AppendError {
    /// A conflict means "read again, decide again, append again"; nothing else is retryable
    /// by the caller.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            AppendError::StreamVersionConflict { .. }
                | AppendError::TagConflict { .. }
                | AppendError::Deadlock
                | AppendError::DataKeyConflict
        )
    }
}

/// Appends atomically in the caller's transaction (which must be READ COMMITTED, the
/// default). This locks the streams and tags involved until the caller commits or rolls back:
/// call it as the last statement before commit, so that writers of the same tags queue for one
/// insert and one commit only.
pub async fn append(conn: &mut PgConnection, append: &Append) -> Result<Appended, AppendError> {
    append_with(conn, append, APPEND_SQL, Vec::new()).await
}

/// The statement of [`append`]: its [`APPEND_PARAMS`] parameters are bound by [`append_with`].
pub const APPEND_SQL: &str = "SELECT event_id, event_stream_id, event_stream_version
       FROM fundledger_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::pg_snapshot)";

/// The number of parameters of [`APPEND_SQL`].
pub const APPEND_PARAMS: usize = 12;

/// Runs `sql`, a statement that contains [`APPEND_SQL`] (for example as a common table
/// expression, with more work done in the same round trip) and returns its rows, with the
/// append's parameters bound as `$1`..`$12` and `extra` as `$13`.. (jsonb).
pub async fn append_with(
    conn: &mut PgConnection,
    append: &Append,
    sql: &str,
    extra: Vec<Value>,
) -> Result<Appended, AppendError> {
    if append.events.is_empty() {
        return Err(AppendError::Invalid("an append needs at least one event"));
    }
    if append.events.len() > APPEND_EVENTS_MAX {
        return Err(AppendError::Invalid("an append carries at most APPEND_EVENTS_MAX events"));
    }
    let n = append.events.len();
    let mut streams = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut schema_versions = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut business_dates = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    for e in &append.events {
        streams.push(e.stream_id.as_str());
        types.push(e.event_type.as_str());
        schema_versions.push(e.schema_version);
        data.push(&e.data);
        metadata.push(serde_json::to_value(&e.metadata).expect("metadata serialises"));
        business_dates.push(e.business_date);
        tags.push(Value::from(e.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>()));
    }
    let expect_streams: Vec<&str> = append.expected.iter().map(|(s, _)| s.as_str()).collect();
    let expect_versions: Vec<i64> = append.expected.iter().map(|(_, v)| v.as_sql()).collect();
    let (condition_tags, condition_after) = match &append.condition {
        Some(c) => {
            (c.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(), Some(c.after.0.as_str()))
        }
        None => (Vec::new(), None),
    };

    let lock_keys = lock_keys(append);
    let mut query = sqlx::query_as::<_, (i64, String, i64)>(sql)
        .bind(&lock_keys)
        .bind(&streams)
        .bind(&types)
        .bind(&schema_versions)
        .bind(&data)
        .bind(&metadata)
        .bind(&business_dates)
        .bind(&tags)
        .bind(&expect_streams)
        .bind(&expect_versions)
        .bind(&condition_tags)
        .bind(condition_after);
    for value in &extra {
        query = query.bind(value);
    }
    let rows: Vec<(i64, String, i64)> = query.fetch_all(&mut *conn).await.map_err(classify)?;

    assert_eq!(rows.len(), n, "the append returns one row per event");
    Ok(Appended { events: rows.into_iter().map(|(id, _, v)| (id, v)).collect() })
}

/// Takes the locks an append with these tags would take, now, until the transaction ends.
///
/// For hot aggregates (one pool's quota while forty counties approve at once): taking the
/// lock before reading makes the commands queue and proceed one after another, each reading
/// what the previous one committed, instead of all reading the same state and all but one
/// failing their condition and retrying. The append re-takes the same locks (they are
/// re-entrant), so correctness still rests on its condition.
pub async fn lock_tags(conn: &mut PgConnection, tags: &[Tag]) -> Result<(), AppendError> {
    let keys = tag_lock_keys(tags);
    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS u(k, n) ORDER BY n")
        .bind(&keys)
        .execute(conn)
        .await
        .map_err(classify)?;
    Ok(())
}

/// What [`lock_read`] read: the events, the read point they were read under, the ids of the
/// events carrying the id tag, and the persons' data key rows (read in the same statement).
#[derive(Debug, Clone)]
pub struct LockedRead {
    /// In id order: the events carrying any of the tags read, or in any of the streams read.
    pub events: Vec<super::RecordedEvent>,
    pub read_point: super::ReadPoint,
    pub tag_ids: Vec<i64>,
    /// The latest `person_keys` row of each person asked for, as JSON
    /// (`crate::personal::data_keys::DataKeyRow`s): the store passes it through unread.
    pub data_keys: Value,
}

/// A command's whole read in one round trip (`fundledger_lock_read`, migrations 0013 and
/// 0016): takes the locks of `lock` (as [`lock_tags`] does), then, holding them, reads the
/// latest data key rows of `persons`, the events carrying any of `tags` or in any of
/// `streams`, the read point, and the ids of the events tagged `id_tag`. The read sees
/// everything committed before the locks were granted.
pub async fn lock_read(
    conn: &mut PgConnection,
    lock: &[Tag],
    tags: &[Tag],
    streams: &[&str],
    id_tag: &str,
    persons: &[&str],
) -> Result<LockedRead, AppendError> {
    let keys = tag_lock_keys(lock);
    let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    let rows = sqlx::query("SELECT * FROM fundledger_lock_read($1, $2, $3, $4, $5)")
        .bind(&keys)
        .bind(&tags)
        .bind(streams)
        .bind(id_tag)
        .bind(persons)
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    use sqlx::Row;
    let first = rows.first().expect("fundledger_lock_read returns at least one row");
    let read_point = super::ReadPoint(first.try_get("read_point")?);
    let tag_ids: Vec<i64> = first.try_get("tag_ids")?;
    let data_keys: Value = first.try_get("data_keys")?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<i64>, _>("id")?.is_some() {
            events.push(super::read::from_row(row)?);
        }
    }
    Ok(LockedRead { events, read_point, tag_ids, data_keys })
}

/// The advisory lock keys of every stream and tag the append touches or is conditioned on,
/// sorted and distinct: every writer takes its locks in the same order, so none deadlock.
/// The streams and the tags its events carry are locked exclusively; a tag it is only
/// conditioned on is locked shared (odd key: migration 0017), so commands that only read a
/// tag (every submission reads the policies') do not queue behind each other, while its
/// writers still wait for them and they for its writers.
/// Two names hashing alike only make their writers queue; correctness does not depend on it.
fn lock_keys(append: &Append) -> Vec<i64> {
    let streams = append.events.iter().map(|e| ("stream:", e.stream_id.as_str()));
    let tags = append.events.iter().flat_map(|e| e.tags.iter()).map(|t| ("tag:", t.as_str()));
    let written: std::collections::BTreeSet<i64> =
        streams.chain(tags).map(|(kind, name)| lock_key(kind, name)).collect();
    let read_only = append
        .condition
        .iter()
        .flat_map(|c| c.tags.iter())
        .map(|t| lock_key("tag:", t.as_str()))
        .filter(|k| !written.contains(k))
        .map(|k| k | 1);
    let mut keys: Vec<i64> = written.iter().copied().chain(read_only).collect();
    // Even keys and their odd (shared) forms sort next to each other: one global order.
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The exclusive advisory lock keys of `tags`, sorted and distinct: the order every writer
/// takes its locks in (the keys an append of events carrying them takes too).
pub(crate) fn tag_lock_keys(tags: &[Tag]) -> Vec<i64> {
    let mut keys: Vec<i64> = tags.iter().map(|t| lock_key("tag:", t.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// FNV-1a, 64 bits: stable across processes and releases, unlike `std`'s hasher. The lowest
/// bit is cleared: it carries the lock's mode to `fundledger_append` (odd = shared).
fn lock_key(kind: &str, name: &str) -> i64 {
    let hash = kind
        .bytes()
        .chain(name.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    i64::from_ne_bytes((hash & !1).to_ne_bytes())
}

/// Turns the SQLSTATEs raised by `fundledger_append` into typed conflicts.
pub(crate) fn classify(err: sqlx::Error) -> AppendError {
    let Some(db) = err.as_database_error() else {
        return AppendError::Database(err);
    };
    let detail = || -> Option<Value> {
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
        serde_json::from_str(pg.detail()?).ok()
    };
    match db.code().as_deref() {
        Some("FL001") => match detail() {
            Some(d) => AppendError::StreamVersionConflict {
                stream: d["stream"].as_str().unwrap_or_default().to_string(),
                expected: d["expected"].as_i64().unwrap_or_default(),
                actual: d["actual"].as_i64().unwrap_or_default(),
            },
            None => AppendError::Database(err),
        },
        Some("FL002") => match detail() {
            Some(d) => AppendError::TagConflict {
                tag: d["tag"].as_str().unwrap_or_default().to_string(),
                event_id: d["event_id"].as_i64().unwrap_or_default(),
            },
            None => AppendError::Database(err),
        },
        // A racing insert of the same stream version can only happen if the stream lock was
        // bypassed; report it as the conflict it is rather than as a crash.
        Some("23505") if db.constraint() == Some("events_stream_version_key") => {
            AppendError::StreamVersionConflict { stream: String::new(), expected: -1, actual: -1 }
        }
        Some("23505")
            if matches!(db.constraint(), Some("person_keys_pkey" | "person_keys_live")) =>
        {
            AppendError::DataKeyConflict
        }
        Some("40P01") => AppendError::Deadlock,
        _ => AppendError::Database(err),
    }
}
