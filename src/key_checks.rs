//! The keys kept outside the database, checked against what the database recorded of them
//! (`key_checks`, migration 0006), before anything runs.
//!
//! A lost personal-data key file, silently replaced, would start a new ledger inside the old
//! one: nobody's earlier subsidies would be found (annual limits and once-only rules would stop
//! holding) and every sealed name and ID number would become unreadable. So:
//! - a key is created only when there is nothing it could be missing for: personal keys for a
//!   ledger with no event at all, the checkpoint key for a ledger with no checkpoint signed;
//! - otherwise a missing file, or one whose key does not give the recorded check value, stops
//!   the command with a sentence naming the key and the path it was looked for at;
//! - a key file met for the first time by a ledger that has no check recorded yet (a ledger
//!   from before migration 0006) is recorded as this ledger's.
//!
//! The checks run as the owner: the service's role may read `key_checks`, never write it.

use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::checkpoints::{self, CheckpointError};
use crate::personal::keys::check_value;
use crate::personal::{KeyError, Keys};

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The sentence says which key, where it was looked for, and what to do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("checking the keys against the database failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// A check value the database holds.
#[derive(Debug, sqlx::FromRow)]
struct Recorded {
    name: String,
    key_id: i32,
    check_value: Vec<u8>,
    created_at: DateTime<Utc>,
}

const RESTORE: &str = "restore it from its backup, or point --key-dir (FUNDLEDGER_KEY_DIR) or \
FUNDLEDGER_KEY_FILE at it; fundledger creates keys only for an empty ledger, because new keys \
would find nobody's earlier subsidies and open no sealed name or ID number";

fn describe(name: &str, id: i32) -> String {
    match name {
        "person" => "person-key (HMAC) key".to_string(),
        "seal" => format!("sealing key {id}"),
        _ => "checkpoint signing key".to_string(),
    }
}

/// Locks `key_checks` for this transaction (two processes starting at once check in turn) and
/// reads what is recorded under `names`.
async fn recorded(conn: &mut PgConnection, names: &[&str]) -> Result<Vec<Recorded>, sqlx::Error> {
    sqlx::query("LOCK TABLE key_checks IN SHARE ROW EXCLUSIVE MODE").execute(&mut *conn).await?;
    sqlx::query_as(
        "SELECT name, key_id, check_value, created_at FROM key_checks
          WHERE name = ANY($1) ORDER BY name, key_id",
    )
    .bind(names)
    .fetch_all(conn)
    .await
}

async fn record(
    conn: &mut PgConnection,
    checks: &[(&'static str, u32, [u8; 32])],
) -> Result<(), sqlx::Error> {
    for (name, id, check) in checks {
        sqlx::query(
            "INSERT INTO key_checks (name, key_id, check_value) VALUES ($1, $2, $3)
             ON CONFLICT (name, key_id) DO NOTHING",
        )
        .bind(name)
        .bind(*id as i32)
        .bind(&check[..])
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every recorded check must be met by the file's key of that name and id.
fn compare(
    recorded: &[Recorded],
    checks: &[(&'static str, u32, [u8; 32])],
    what: &str,
    path: &Path,
) -> Result<(), KeyCheckError> {
    for r in recorded {
        let key = describe(&r.name, r.key_id);
        let date = r.created_at.format("%Y-%m-%d");
        match checks.iter().find(|(n, id, _)| *n == r.name && *id as i32 == r.key_id) {
            None => {
                return Err(KeyCheckError::Refused(format!(
                    "the {what} {} has no {key}, which this ledger recorded on {date}: it is an \
                     older copy of the file; restore the newest backup",
                    path.display()
                )))
            }
            Some((_, _, check)) if check[..] != r.check_value[..] => {
                return Err(KeyCheckError::Refused(format!(
                    "the {what} {} is not this ledger's: its {key} does not match the one this \
                     ledger recorded on {date}. Point --key-dir (FUNDLEDGER_KEY_DIR) or the key \
                     file variable at this ledger's keys; fundledger never replaces the keys of \
                     a ledger",
                    path.display()
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn personal_in(conn: &mut PgConnection, path: &Path) -> Result<Keys, KeyCheckError> {
    let recorded = recorded(conn, &["person", "seal"]).await?;
    let file = match Keys::load(path) {
        Ok(keys) => Some(keys),
        Err(KeyError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let keys = match file {
        Some(keys) => {
            compare(&recorded, &keys.check_values(), "personal-data key file", path)?;
            keys
        }
        None if !recorded.is_empty() => {
            let date = recorded[0].created_at.format("%Y-%m-%d");
            return Err(KeyCheckError::Refused(format!(
                "the personal-data key file {} is missing; this ledger recorded its keys on \
                 {date}: {RESTORE}",
                path.display()
            )));
        }
        None => {
            let any_event: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
                .fetch_one(&mut *conn)
                .await?;
            if any_event {
                return Err(KeyCheckError::Refused(format!(
                    "the personal-data key file {} is missing, and this ledger already holds \
                     events: {RESTORE}",
                    path.display()
                )));
            }
            let keys = Keys::generate();
            keys.create(path)?;
            tracing::info!(path = %path.display(), "created the personal-data keys of a new ledger; back the file up apart from the database");
            keys
        }
    };
    // A key the file holds and the database does not: a first start after migration 0006, or
    // a rotation whose recording did not finish. Nothing is sealed under it that the check
    // would contradict.
    record(conn, &keys.check_values()).await?;
    Ok(keys)
}

/// The personal-data keys at `path`, checked against the database (created only for a ledger
/// with no event).
pub async fn personal(owner: &PgConnectOptions, path: &Path) -> Result<Keys, KeyCheckError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut conn = owner.connect().await?;
    let mut tx = conn.begin().await?;
    let keys = personal_in(&mut tx, &path).await?;
    tx.commit().await?;
    Ok(keys)
}

/// Adds a sealing key to the file at `path` and records it: values are sealed under it from
/// the next start on; the old keys stay in the file to open what they sealed.
pub async fn rotate(owner: &PgConnectOptions, path: &Path) -> Result<Keys, KeyCheckError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut conn = owner.connect().await?;
    let mut tx = conn.begin().await?;
    let keys = personal_in(&mut tx, &path).await?;
    let rotated = keys.rotated();
    // The file first: a key recorded but never written would stop every later start.
    rotated.replace(&path)?;
    record(&mut tx, &rotated.check_values()).await?;
    tx.commit().await?;
    Ok(rotated)
}

/// The checkpoint signing key at `path`, checked against the database (created only for a
/// ledger with no checkpoint signed yet: a new key then loses nothing).
pub async fn checkpoint(
    owner: &PgConnectOptions,
    path: &Path,
) -> Result<SigningKey, KeyCheckError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut conn = owner.connect().await?;
    let mut tx = conn.begin().await?;
    let recorded = recorded(&mut tx, &["checkpoint"]).await?;
    let key = match checkpoints::load(&path)? {
        Some(key) => {
            let checks = [("checkpoint", 1, check_value(&key.to_bytes()))];
            compare(&recorded, &checks, "checkpoint signing key file", &path)?;
            key
        }
        None => {
            let signed_before: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE event_type = $1)")
                    .bind(<events::checkpoint::CheckpointSigned as events::DomainEvent>::TYPE)
                    .fetch_one(&mut *tx)
                    .await?;
            if !recorded.is_empty() || signed_before {
                return Err(KeyCheckError::Refused(format!(
                    "the checkpoint signing key file {} is missing, and this ledger has signed \
                     checkpoints with it: restore it from its backup, or point \
                     --key-dir (FUNDLEDGER_KEY_DIR) or FUNDLEDGER_CHECKPOINT_KEY_FILE at it. \
                     Where checkpoints are signed on another host, run `serve` with \
                     --checkpoint-every 0",
                    path.display()
                )));
            }
            let key = checkpoints::create(&path)?;
            tracing::info!(path = %path.display(), "created the checkpoint signing key; keep it on the signing host and back it up");
            key
        }
    };
    record(&mut tx, &[("checkpoint", 1, check_value(&key.to_bytes()))]).await?;
    tx.commit().await?;
    Ok(key)
}
