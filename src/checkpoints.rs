//! Signed checkpoints: the chain's head signed with an Ed25519 key kept outside the database
//! (`checkpoint.key` in the key directory, mode 0600, or `FUNDLEDGER_CHECKPOINT_KEY_FILE`),
//! best on another host than the server's (README, "Security model").
//! Verification checks each checkpoint's signature against the public key the auditor trusts,
//! and that the chain still has the signed hash at the signed position.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::Utc;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use events::checkpoint::CheckpointSigned;
use events::{DomainEvent, Metadata};
use sqlx::{PgConnection, PgPool};

use crate::store::{append, read_stream, Append, ExpectedVersion, NewEvent};

pub const STREAM: &str = "checkpoints";
const HEADER: &str = "fundledger checkpoint signing key v1 (Ed25519 seed, hex)";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is readable by others (mode {mode:o}); chmod 600 it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} is not a checkpoint key file")]
    Malformed { path: PathBuf },
    #[error("the log is empty: there is nothing to sign yet")]
    EmptyLog,
    #[error("another checkpoint was recorded at the same moment; run it again")]
    Conflict,
    #[error(transparent)]
    Append(#[from] crate::store::AppendError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The signing key file: `FUNDLEDGER_CHECKPOINT_KEY_FILE`, or `checkpoint.key` in `key_dir`.
pub fn default_path(key_dir: &Path) -> PathBuf {
    std::env::var_os("FUNDLEDGER_CHECKPOINT_KEY_FILE")
        .filter(|p| !p.is_empty())
        .map_or_else(|| key_dir.join("checkpoint.key"), PathBuf::from)
}

/// A fresh signing key, written to `path` (mode 0600); fails if the file exists. Only
/// [`crate::key_checks::checkpoint`] calls it, for a ledger with no checkpoint yet.
pub fn create(path: &Path) -> Result<SigningKey, CheckpointError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let text = format!("{HEADER}\n{}\n", hex::encode(key.to_bytes()));
    crate::personal::keys::write_new(path, &text).map_err(|e| match e {
        crate::personal::KeyError::Io { path, source } => CheckpointError::Io { path, source },
        other => CheckpointError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    Ok(key)
}

/// Reads the signing key; `Ok(None)` if the file does not exist.
pub fn load(path: &Path) -> Result<Option<SigningKey>, CheckpointError> {
    let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CheckpointError::TooOpen { path: path.to_path_buf(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let malformed = || CheckpointError::Malformed { path: path.to_path_buf() };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(malformed());
    }
    let seed: [u8; 32] = lines
        .next()
        .and_then(|l| hex::decode(l.trim()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    Ok(Some(SigningKey::from_bytes(&seed)))
}

/// Parses a hex public key as `--public-key` takes it.
pub fn public_key(hex_key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Signs the current head of the chain and records it as a `CheckpointSigned` event.
pub async fn record(
    pool: &PgPool,
    key: &SigningKey,
    actor: &str,
) -> Result<CheckpointSigned, CheckpointError> {
    let mut conn = pool.acquire().await?;
    crate::store::sequence(&mut conn).await?;
    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT position, hash FROM log WHERE hash IS NOT NULL ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (position, hash) = head.ok_or(CheckpointError::EmptyLog)?;
    let hash = hex::encode(hash);
    let signed_at = Utc::now();
    let signature = key.sign(CheckpointSigned::message(position, &hash, &signed_at).as_bytes());
    let event = CheckpointSigned {
        position,
        hash,
        signed_at,
        public_key: hex::encode(key.verifying_key().to_bytes()),
        signature: hex::encode(signature.to_bytes()),
    };
    let version = read_stream(&mut conn, STREAM).await?.last().map(|e| e.stream_version);
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let appending = Append {
        events: vec![NewEvent {
            stream_id: STREAM.to_string(),
            event_type: CheckpointSigned::TYPE.to_string(),
            schema_version: CheckpointSigned::VERSION,
            data: serde_json::to_value(&event).expect("events serialise"),
            metadata: Metadata { actor: Some(actor.to_string()), ..Metadata::default() },
            tags: vec![],
            business_date: Some((signed_at + chrono::Duration::hours(8)).date_naive()),
        }],
        expected: vec![(
            STREAM.to_string(),
            version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact),
        )],
        condition: None,
    };
    match append(&mut tx, &appending).await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => return Err(CheckpointError::Conflict),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(event)
}

/// A checkpoint whose signature holds under the trusted key: the chain must have `hash` at
/// `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub position: i64,
    pub hash: String,
    pub signed_at: chrono::DateTime<Utc>,
}

/// Every recorded checkpoint, checked against the trusted key: the valid ones, and the
/// position of the first one that does not verify.
pub async fn signed(
    conn: &mut PgConnection,
    trusted: &VerifyingKey,
) -> Result<(Vec<Signed>, Option<(i64, String)>), sqlx::Error> {
    let rows: Vec<(Option<i64>, serde_json::Value)> = sqlx::query_as(
        "SELECT l.position, e.data FROM events e LEFT JOIN log l ON l.event_id = e.id \
          WHERE e.event_type = $1 ORDER BY e.id",
    )
    .bind(CheckpointSigned::TYPE)
    .fetch_all(conn)
    .await?;
    let mut valid = Vec::new();
    for (at, data) in rows {
        let at = at.unwrap_or_default();
        let Ok(c) = serde_json::from_value::<CheckpointSigned>(data) else {
            return Ok((valid, Some((at, "a checkpoint event that does not parse".into()))));
        };
        let signature = hex::decode(&c.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b));
        let message = CheckpointSigned::message(c.position, &c.hash, &c.signed_at);
        let good = signature.is_some_and(|s| trusted.verify(message.as_bytes(), &s).is_ok());
        if !good {
            return Ok((
                valid,
                Some((
                    at,
                    format!(
                        "the checkpoint of position {} is not signed by the trusted key",
                        c.position
                    ),
                )),
            ));
        }
        valid.push(Signed { position: c.position, hash: c.hash, signed_at: c.signed_at });
    }
    Ok((valid, None))
}
