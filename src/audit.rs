//! Verification of the audit hash chain (migration 0005): walks the log in order, recomputes
//! each event's canonical bytes from the row itself (not with the database's function, which
//! someone rewriting history could change too) and each hash from the previous one, and
//! reports the first position where the chain breaks.

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use events::DomainEvent;
use sqlx::PgConnection;

use crate::copy_binary;

/// Rows read per round trip.
const PAGE: i64 = 10_000;

/// The first break in the chain, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    pub position: i64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub ok: bool,
    /// Checkpoints whose signature holds under the trusted key and whose hash the chain still
    /// has (none checked without a trusted key).
    pub checkpoints_verified: usize,
    /// Whether checkpoint signatures were checked at all: only against a public key the
    /// verifier was given (`--public-key`, `FUNDLEDGER_CHECKPOINT_PUBLIC_KEY`), never one it
    /// derived from a signing key it holds itself. `false`: the chain alone was verified.
    pub signatures_checked: bool,
    /// The highest position a verified checkpoint covers: a chain rewritten below it with
    /// fresh hashes is caught; above it, only the next checkpoint will tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_through: Option<i64>,
    pub events_checked: i64,
    pub head_position: i64,
    /// Hex SHA-256 of the last event checked.
    pub head_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<Break>,
}

/// One event's place in the chain, as read back.
#[derive(Debug, Clone)]
pub struct ChainRow {
    pub position: i64,
    /// False when the log names an event row that no longer exists.
    pub present: bool,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub business_date: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
    pub tags: Vec<String>,
    /// `data::text` and `metadata::text`: PostgreSQL's jsonb output, its canonical form.
    pub data: String,
    pub metadata: String,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
}

/// The genesis: the hash before position 1.
pub const GENESIS: [u8; 32] = [0; 32];

/// A string as jsonb prints it: JSON escapes for `"`, `\` and control characters (`\b \f
/// \n \r \t`, otherwise `\u00XX`), everything else as UTF-8. serde_json escapes the same way.
fn string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("strings serialise into memory");
}

/// Appends the canonical bytes of an event at a position to `out` (migration 0005 documents
/// the format). Written piece by piece into one buffer: verification builds one per event,
/// and allocating each piece cost more than hashing it.
pub fn canonical_into(row: &ChainRow, out: &mut Vec<u8>) {
    use std::io::Write;
    let io = "writing into memory";
    write!(out, "[{}, ", row.position).expect(io);
    string(out, &row.stream_id);
    write!(out, ", {}, ", row.stream_version).expect(io);
    string(out, &row.event_type);
    write!(out, ", {}, ", row.schema_version).expect(io);
    match row.business_date {
        Some(d) => write!(out, "\"{}\"", d.format("%Y-%m-%d")).expect(io),
        None => out.extend_from_slice(b"null"),
    }
    write!(out, ", \"{}\", [", row.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ")).expect(io);
    for (i, t) in row.tags.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        string(out, t);
    }
    out.extend_from_slice(b"], ");
    out.extend_from_slice(row.data.as_bytes());
    out.extend_from_slice(b", ");
    out.extend_from_slice(row.metadata.as_bytes());
    out.push(b']');
}

/// The canonical bytes of an event at a position.
pub fn canonical(row: &ChainRow) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.data.len() + row.metadata.len() + 160);
    canonical_into(row, &mut out);
    out
}

pub fn chain_hash(prev: &[u8], row: &ChainRow) -> [u8; 32] {
    chain_hash_with(prev, row, &mut Vec::new())
}

/// [`chain_hash`] building the canonical text in `buffer` (emptied first), so a walk over
/// many rows allocates once.
fn chain_hash_with(prev: &[u8], row: &ChainRow, buffer: &mut Vec<u8>) -> [u8; 32] {
    buffer.clear();
    canonical_into(row, buffer);
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&buffer[..]);
    h.finalize().into()
}

/// Checks rows in log order, continuing from `prev` at `expected_position`: the first break,
/// or the hash of the last row.
pub fn check(
    rows: &[ChainRow],
    mut expected_position: i64,
    mut prev: [u8; 32],
    signed: &HashMap<i64, String>,
) -> Result<[u8; 32], Break> {
    let mut buffer = Vec::new();
    for row in rows {
        if row.position != expected_position {
            return Err(Break {
                position: expected_position,
                problem: format!(
                    "position {expected_position} is missing (the next row is position {})",
                    row.position
                ),
            });
        }
        if !row.present {
            return Err(Break {
                position: row.position,
                problem: "its event row is missing (deleted after it was recorded)".into(),
            });
        }
        let computed = chain_hash_with(&prev, row, &mut buffer);
        if row.prev_hash.as_deref() != Some(&prev[..]) {
            return Err(Break {
                position: row.position,
                problem: "its prev_hash is not the previous event's hash".into(),
            });
        }
        if row.hash.as_deref() != Some(&computed[..]) {
            return Err(Break {
                position: row.position,
                problem: "its content does not match its hash (changed after it was recorded)"
                    .into(),
            });
        }
        if let Some(hash) = signed.get(&row.position) {
            if *hash != hex::encode(computed) {
                return Err(Break {
                    position: row.position,
                    problem: "the chain here differs from the hash a signed checkpoint recorded \
                              (rewritten with fresh hashes)"
                        .into(),
                });
            }
        }
        prev = computed;
        expected_position += 1;
    }
    Ok(prev)
}

type Row = (
    i64,
    bool,
    String,
    i64,
    String,
    i32,
    Option<NaiveDate>,
    DateTime<Utc>,
    Vec<String>,
    String,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// The columns of a chain row, in [`ChainRow`]'s order: one list for the paged read and the
/// COPY stream.
const CHAIN_COLUMNS: &str = "l.position, e.id IS NOT NULL, coalesce(e.stream_id, ''), \
     coalesce(e.stream_version, 0), coalesce(e.event_type, ''), coalesce(e.schema_version, 0), \
     e.business_date, coalesce(e.recorded_at, 'epoch'), coalesce(e.tags, '{}'), \
     coalesce(e.data::text, ''), coalesce(e.metadata::text, ''), l.prev_hash, l.hash";

async fn page(conn: &mut PgConnection, after: i64) -> Result<Vec<ChainRow>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {CHAIN_COLUMNS} FROM log l LEFT JOIN events e ON e.id = l.event_id \
          WHERE l.position > $1 ORDER BY l.position LIMIT $2"
    ))
    .bind(after)
    .bind(PAGE)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ChainRow {
            position: r.0,
            present: r.1,
            stream_id: r.2,
            stream_version: r.3,
            event_type: r.4,
            schema_version: r.5,
            business_date: r.6,
            recorded_at: r.7,
            tags: r.8,
            data: r.9,
            metadata: r.10,
            prev_hash: r.11,
            hash: r.12,
        })
        .collect())
}

/// Rows handed to the checking thread at a time.
const COPY_BATCH: usize = 2_000;

/// Streams the chain rows of positions `after + 1 ..= through`, in order, with one binary
/// `COPY`: no page boundaries, no round trip per page, no text decoding of numbers, dates
/// or hashes. They go to `rows` in batches; once its receiver is gone, the rest of the stream
/// is read and dropped undecoded (a COPY cannot be abandoned half read on a connection that
/// goes on being used), so a walk that stops at a break costs at most what a whole walk
/// costs. Returns whether the receiver took every row.
pub async fn stream_rows(
    conn: &mut PgConnection,
    after: i64,
    through: i64,
    rows: &tokio::sync::mpsc::Sender<Vec<ChainRow>>,
) -> Result<bool, sqlx::Error> {
    // One statement over the whole range: the planner joins the two tables as a whole (a
    // merge or hash join, in parallel workers when it can), which measured 1.2 to 1.3 times
    // faster than finding each event by its id, or than the same range cut in chunks.
    let statement = format!(
        "COPY (SELECT {CHAIN_COLUMNS} FROM log l \
                 LEFT JOIN events e ON e.id = l.event_id \
                WHERE l.position > {after} AND l.position <= {through} \
                ORDER BY l.position) \
         TO STDOUT (FORMAT binary)"
    );
    copy_binary::stream(conn, &statement, COPY_BATCH, rows, |_| {}).await
}

impl copy_binary::CopyRow for ChainRow {
    const COLUMNS: usize = 13;
    fn from_fields(f: &[Option<&[u8]>]) -> Result<Self, sqlx::Error> {
        use copy_binary::{date_of, i32_of, i64_of, need, text_array_of, text_of, timestamp_of};
        Ok(ChainRow {
            position: i64_of(need(f, 0)?)?,
            present: need(f, 1)?.first() == Some(&1),
            stream_id: text_of(need(f, 2)?)?,
            stream_version: i64_of(need(f, 3)?)?,
            event_type: text_of(need(f, 4)?)?,
            schema_version: i32_of(need(f, 5)?)?,
            business_date: f[6].map(date_of).transpose()?,
            recorded_at: timestamp_of(need(f, 7)?)?,
            tags: text_array_of(need(f, 8)?)?,
            data: text_of(need(f, 9)?)?,
            metadata: text_of(need(f, 10)?)?,
            prev_hash: f[11].map(<[u8]>::to_vec),
            hash: f[12].map(<[u8]>::to_vec),
        })
    }
}

/// The most events one windowed verification checks (`GET /v1/audit/verify?from=&limit=`): a
/// request's cost is bounded whatever the log's length.
pub const WINDOW_LIMIT_MAX: i64 = 1_000_000;

/// Verifies the chain over the window of `limit` positions starting at `from` only (fewer when
/// the log ends first): each row's hash, its link to the previous one, and the signed
/// checkpoints that fall inside. The window starts from the hash stored at `from - 1` (the
/// genesis for `from = 1`): it shows that its rows are untouched and continue the chain as
/// stored before them; a run from position 1, or a signed checkpoint at or after the window,
/// shows the rest. Cost: the window, not the log.
pub async fn verify_window(
    conn: &mut PgConnection,
    trusted: Option<&VerifyingKey>,
    from: i64,
    limit: i64,
) -> Result<Verification, sqlx::Error> {
    assert!(from >= 1 && (1..=WINDOW_LIMIT_MAX).contains(&limit), "checked by the caller");
    let (checkpoints, forged) = match trusted {
        Some(key) => crate::checkpoints::signed(conn, key).await?,
        None => (Vec::new(), None),
    };
    let broken = |position: i64, problem: String, head_hash: Option<String>| Verification {
        ok: false,
        checkpoints_verified: 0,
        signatures_checked: trusted.is_some(),
        signed_through: None,
        events_checked: (position - from).max(0),
        head_position: position - 1,
        head_hash,
        first_bad: Some(Break { position, problem }),
    };
    if let Some((position, problem)) = forged {
        return Ok(broken(position, problem, None));
    }
    let signed: HashMap<i64, String> =
        checkpoints.iter().map(|c| (c.position, c.hash.clone())).collect();
    let mut prev = GENESIS;
    if from > 1 {
        let stored: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT hash FROM log WHERE position = $1")
                .bind(from - 1)
                .fetch_optional(&mut *conn)
                .await?;
        match stored.flatten().and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()) {
            Some(h) => prev = h,
            None => {
                let problem = "the position before the window has no hash recorded".to_string();
                return Ok(broken(from - 1, problem, None));
            }
        }
    }
    let end = from + limit; // exclusive
    let mut next = from;
    let mut head_hash = None;
    while next < end {
        let mut rows = page(conn, next - 1).await?;
        rows.truncate((end - next) as usize);
        if rows.is_empty() {
            break;
        }
        match check(&rows, next, prev, &signed) {
            Ok(last) => {
                prev = last;
                next += rows.len() as i64;
                head_hash = Some(hex::encode(last));
            }
            Err(b) => return Ok(broken(b.position, b.problem, head_hash)),
        }
    }
    let inside: Vec<i64> =
        checkpoints.iter().map(|c| c.position).filter(|p| (from..next).contains(p)).collect();
    Ok(Verification {
        ok: true,
        checkpoints_verified: inside.len(),
        signatures_checked: trusted.is_some(),
        signed_through: inside.iter().max().copied(),
        events_checked: next - from,
        head_position: next - 1,
        head_hash,
        first_bad: None,
    })
}

/// Walks the whole chain, as far as positions had been handed out when it starts. `progress`
/// is called now and then with the position checked so far.
/// With a trusted public key, signed checkpoints are checked too.
pub async fn verify(
    conn: &mut PgConnection,
    trusted: Option<&VerifyingKey>,
    mut progress: impl FnMut(i64),
) -> Result<Verification, sqlx::Error> {
    // Reads only: what has a position. (`serve` keeps sequencing in the background.)
    let (checkpoints, forged) = match trusted {
        Some(key) => crate::checkpoints::signed(conn, key).await?,
        None => (Vec::new(), None),
    };
    if let Some((position, problem)) = forged {
        return Ok(Verification {
            ok: false,
            checkpoints_verified: 0,
            signatures_checked: trusted.is_some(),
            signed_through: None,
            events_checked: 0,
            head_position: 0,
            head_hash: None,
            first_bad: Some(Break { position, problem }),
        });
    }
    let signed: HashMap<i64, String> =
        checkpoints.iter().map(|c| (c.position, c.hash.clone())).collect();
    // The positions handed out when the walk starts (`serve` may sequence more meanwhile).
    let head = crate::store::head(&mut *conn).await?.0;
    // The rows stream in (one binary COPY) while the rows before them are hashed on another
    // thread: the database, the decoding and the hashing each keep a core busy.
    let (rows, mut received) = tokio::sync::mpsc::channel::<Vec<ChainRow>>(8);
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let reached_here = reached.clone();
    let checking = tokio::task::spawn_blocking(move || {
        let (mut prev, mut next) = (GENESIS, 1);
        let mut head_hash = None;
        while let Some(batch) = received.blocking_recv() {
            let count = batch.len() as i64;
            match check(&batch, next, prev, &signed) {
                Ok(last) => {
                    prev = last;
                    next += count;
                    head_hash = Some(hex::encode(last));
                    reached_here.store(next - 1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(b) => return (next, head_hash, Some(b)),
            }
        }
        (next, head_hash, None)
    });
    // What has been checked so far goes to `progress` five times a second.
    {
        let streaming = stream_rows(conn, 0, head, &rows);
        tokio::pin!(streaming);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                streamed = &mut streaming => {
                    streamed?;
                    break;
                }
                _ = tick.tick() => progress(reached.load(std::sync::atomic::Ordering::Relaxed)),
            }
        }
    }
    drop(rows);
    let (next, head_hash, broken) = checking.await.expect("the check does not panic");
    if let Some(b) = broken {
        let checked = b.position - 1;
        return Ok(Verification {
            ok: false,
            checkpoints_verified: 0,
            signatures_checked: trusted.is_some(),
            signed_through: None,
            events_checked: checked,
            head_position: checked,
            head_hash,
            first_bad: Some(b),
        });
    }
    progress(next - 1);
    // A checkpoint beyond the head means positions it signed are gone.
    if let Some(c) = checkpoints.iter().find(|c| c.position > next - 1) {
        return Ok(Verification {
            ok: false,
            checkpoints_verified: 0,
            signatures_checked: trusted.is_some(),
            signed_through: None,
            events_checked: next - 1,
            head_position: next - 1,
            head_hash,
            first_bad: Some(Break {
                position: next,
                problem: format!(
                    "a signed checkpoint covers position {}, beyond the end",
                    c.position
                ),
            }),
        });
    }
    Ok(Verification {
        ok: true,
        checkpoints_verified: checkpoints.len(),
        signatures_checked: trusted.is_some(),
        signed_through: checkpoints.iter().map(|c| c.position).max(),
        events_checked: next - 1,
        head_position: next - 1,
        head_hash,
        first_bad: None,
    })
}

/// One line of `fundledger export`: the position, its hashes, and the canonical text the hash
/// covers (a JSON array: position, stream, version, type, schema version, business date,
/// recorded at, tags, data, metadata).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportLine {
    pub position: i64,
    pub prev_hash: String,
    pub hash: String,
    pub canonical: String,
}

/// The log from `from` on, as export lines, page by page.
pub async fn export(
    conn: &mut PgConnection,
    from: i64,
    mut line: impl FnMut(ExportLine) -> std::io::Result<()>,
) -> Result<i64, ExportError> {
    // Everything committed so far gets its position (and hash) first.
    crate::store::sequence(conn).await?;
    let mut after = from.max(1) - 1;
    let mut written = 0;
    loop {
        let rows = page(conn, after).await?;
        if rows.is_empty() {
            return Ok(written);
        }
        for row in &rows {
            line(ExportLine {
                position: row.position,
                prev_hash: hex::encode(row.prev_hash.as_deref().unwrap_or_default()),
                hash: hex::encode(row.hash.as_deref().unwrap_or_default()),
                canonical: String::from_utf8(canonical(row)).expect("canonical text is UTF-8"),
            })?;
            written += 1;
        }
        after = rows.last().map_or(after, |r| r.position);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Verifies an export with no database: the chain over the lines (from the first line's
/// `prev_hash` when the export starts later than position 1), and, with a trusted key, every
/// checkpoint in it.
pub fn verify_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
    trusted: Option<&VerifyingKey>,
) -> std::io::Result<Verification> {
    use ed25519_dalek::{Signature, Verifier};
    let mut hashes: HashMap<i64, [u8; 32]> = HashMap::new();
    let mut pending: Vec<(i64, i64, String)> = Vec::new();
    let mut prev: Option<[u8; 32]> = None;
    let mut expected = None;
    let mut checked = 0;
    let mut checkpoints = 0;
    let mut signed_through = None;
    let fail =
        |position: i64, problem: String, checked: i64, head: Option<[u8; 32]>| Verification {
            ok: false,
            checkpoints_verified: 0,
            signatures_checked: trusted.is_some(),
            signed_through: None,
            events_checked: checked,
            head_position: position - 1,
            head_hash: head.map(hex::encode),
            first_bad: Some(Break { position, problem }),
        };
    for (n, text) in lines.enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let Ok(line) = serde_json::from_str::<ExportLine>(&text) else {
            let at = expected.unwrap_or(1);
            return Ok(fail(at, format!("line {} is not an export line", n + 1), checked, prev));
        };
        let stated_prev: [u8; 32] = match hex::decode(&line.prev_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
        {
            Some(p) => p,
            None => {
                return Ok(fail(line.position, "its prev_hash is not a hash".into(), checked, prev))
            }
        };
        let before = prev.unwrap_or(if line.position == 1 { GENESIS } else { stated_prev });
        if expected.is_some_and(|e| e != line.position) {
            return Ok(fail(
                expected.unwrap_or(1),
                format!("position {} is missing", expected.unwrap_or(1)),
                checked,
                prev,
            ));
        }
        if stated_prev != before {
            return Ok(fail(
                line.position,
                "its prev_hash is not the previous event's hash".into(),
                checked,
                prev,
            ));
        }
        let mut h = Sha256::new();
        h.update(before);
        h.update(line.canonical.as_bytes());
        let computed: [u8; 32] = h.finalize().into();
        if hex::encode(computed) != line.hash {
            return Ok(fail(
                line.position,
                "its content does not match its hash (changed after it was recorded)".into(),
                checked,
                prev,
            ));
        }
        if let Some(key) = trusted {
            let event: serde_json::Value =
                serde_json::from_str(&line.canonical).unwrap_or_default();
            if event[3] == events::checkpoint::CheckpointSigned::TYPE {
                let c: Option<events::checkpoint::CheckpointSigned> =
                    serde_json::from_value(event[8].clone()).ok();
                let good = c.as_ref().is_some_and(|c| {
                    let message = events::checkpoint::CheckpointSigned::message(
                        c.position,
                        &c.hash,
                        &c.signed_at,
                    );
                    hex::decode(&c.signature)
                        .ok()
                        .and_then(|b| <[u8; 64]>::try_from(b).ok())
                        .is_some_and(|s| {
                            key.verify(message.as_bytes(), &Signature::from_bytes(&s)).is_ok()
                        })
                });
                match c {
                    Some(c) if good => pending.push((line.position, c.position, c.hash)),
                    _ => {
                        return Ok(fail(
                            line.position,
                            "a checkpoint that is not signed by the trusted key".into(),
                            checked,
                            prev,
                        ))
                    }
                }
            }
        }
        hashes.insert(line.position, computed);
        prev = Some(computed);
        expected = Some(line.position + 1);
        checked += 1;
    }
    for (_, position, hash) in &pending {
        match hashes.get(position) {
            Some(h) if hex::encode(h) == *hash => {
                checkpoints += 1;
                signed_through = signed_through.max(Some(*position));
            }
            Some(_) => {
                return Ok(fail(
                    *position,
                    "the chain here differs from the hash a signed checkpoint recorded (rewritten with fresh hashes)".into(),
                    checked,
                    prev,
                ))
            }
            // Signed before the export starts: nothing to compare here.
            None => {}
        }
    }
    let head = expected.map_or(0, |e| e - 1);
    Ok(Verification {
        ok: true,
        checkpoints_verified: checkpoints,
        signatures_checked: trusted.is_some(),
        signed_through,
        events_checked: checked,
        head_position: head,
        head_hash: prev.map(hex::encode),
        first_bad: None,
    })
}
