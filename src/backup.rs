//! Backup and restore (备份与恢复, issue 15): `fundledger backup DIR` writes the database as a
//! `pg_dump` archive with a manifest of what it holds (the chain's head position and hash, the
//! signed checkpoints, a SHA-256 of the archive); `fundledger restore DIR` loads it into an
//! empty database, migrates it (a backup of an older release is upgraded and its read models
//! rebuilt), checks the key files against it, and verifies the chain to the same head hash and
//! the same signed checkpoints before saying it is done.
//!
//! The keys are never in a data backup: `fundledger keys backup DIR` copies them, to be kept
//! apart (README "Keys"). A stolen data backup then opens no name or ID number, and a lost
//! key file is not lost with the data.
//!
//! The archive is taken from one exported snapshot, and the manifest's figures are read in that
//! same snapshot while `serve` goes on writing: the archive holds exactly what the manifest
//! says, however busy the ledger. Events committed but not yet positioned at that moment are in
//! the archive too; the restored ledger's sequencer positions them after the head.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use tokio::io::AsyncBufReadExt;

use crate::postgres::cluster::ServerBinaries;
use crate::postgres::ClusterError;

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The archive's file name in a backup directory (`pg_dump --format=custom`).
pub const ARCHIVE: &str = "ledger.dump";
/// The manifest's format; a restore refuses one it does not know.
const FORMAT: u32 = 1;
/// The key files `keys backup` copies, by their names in a key directory.
pub const KEY_FILES: [&str; 2] = ["personal.key", "checkpoint.key"];

/// What a backup holds, read in the archive's own snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The release that took it.
    pub fundledger: String,
    pub taken_at: DateTime<Utc>,
    pub server_version: String,
    /// The newest migration applied to the database backed up.
    pub migration: i64,
    /// Every event row, positioned or not.
    pub events: i64,
    /// The last position of the chain and its hash (hex SHA-256); 0 and none for an empty log.
    pub head_position: i64,
    pub head_hash: Option<String>,
    /// Signed checkpoints in the chain, and the newest.
    pub checkpoints: i64,
    pub last_checkpoint: Option<CheckpointRef>,
    pub archive: String,
    pub archive_bytes: u64,
    pub archive_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub position: i64,
    pub hash: String,
    /// The public key it was signed with (hex): what a restore verifies the checkpoints
    /// against unless given the one the auditor trusts.
    pub public_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The sentence says what is wrong and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{tool} failed ({status}): {stderr}")]
    Tool { tool: &'static str, status: String, stderr: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.to_path_buf(), source }
}

/// A libpq URL without its password, and the password apart (for `PGPASSWORD`): a password in
/// a command line is visible to every account on the machine.
fn libpq_target(url: &str) -> (String, Option<String>) {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let password = u.password().map(crate::postgres::percent_decode);
            let _ = u.set_password(None);
            (u.to_string(), password)
        }
        Err(_) => (url.to_string(), None),
    }
}

/// PostgreSQL's tool `name` from the server's own binaries, pointed at `url` (its password, if
/// any, in the environment), reporting on stderr, stopped if this process drops it.
fn pg_tool(binaries: &ServerBinaries, name: &str, url: &str) -> tokio::process::Command {
    let (target, password) = libpq_target(url);
    let mut c = tokio::process::Command::new(binaries.path(name));
    c.arg("--no-password")
        .arg("--dbname")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    c
}

/// A directory that must be new or empty, created with mode 0700.
fn fresh_dir(dir: &Path, what: &str) -> Result<(), BackupError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(BackupError::Refused(format!(
                "{}: not empty; a {what} goes into a new or empty directory, so that nothing of \
                 an older one is mistaken for it",
                dir.display()
            )));
        }
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// Refuses a data backup directory inside the key directory or the other way round.
fn apart_from_keys(dir: &Path, key_dir: &Path) -> Result<(), BackupError> {
    let absolute = |p: &Path| std::path::absolute(p).map_err(io(p));
    let (dir, keys) = (absolute(dir)?, absolute(key_dir)?);
    if dir.starts_with(&keys) || keys.starts_with(&dir) {
        return Err(BackupError::Refused(format!(
            "{} and the key directory {} overlap: the keys are backed up apart from the data \
             (`fundledger keys backup DIR`), so that one stolen copy opens nothing",
            dir.display(),
            keys.display()
        )));
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn sync(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(io(path))
}

/// The manifest's figures, read in the snapshot the archive is taken from.
async fn figures(conn: &mut PgConnection) -> Result<Manifest, sqlx::Error> {
    let server_version: String =
        sqlx::query_scalar("SHOW server_version").fetch_one(&mut *conn).await?;
    let migration: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await?;
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await?;
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT position, encode(hash, 'hex') FROM log WHERE hash IS NOT NULL \
          ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let checkpoints: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT e.data FROM events e JOIN log l ON l.event_id = e.id \
          WHERE e.event_type = 'CheckpointSigned' AND l.hash IS NOT NULL ORDER BY l.position",
    )
    .fetch_all(&mut *conn)
    .await?;
    let last_checkpoint = checkpoints.last().and_then(|c| {
        Some(CheckpointRef {
            position: c.get("position")?.as_i64()?,
            hash: c.get("hash")?.as_str()?.to_string(),
            public_key: c.get("public_key")?.as_str()?.to_string(),
        })
    });
    Ok(Manifest {
        format: FORMAT,
        fundledger: env!("CARGO_PKG_VERSION").to_string(),
        taken_at: Utc::now(),
        server_version,
        migration: migration.unwrap_or(0),
        events,
        head_position: head.as_ref().map_or(0, |h| h.0),
        head_hash: head.map(|h| h.1),
        checkpoints: checkpoints.len() as i64,
        last_checkpoint,
        archive: ARCHIVE.to_string(),
        archive_bytes: 0,
        archive_sha256: String::new(),
    })
}

/// Writes a backup of the database at `owner_url` into `dir` (new or empty), apart from
/// `key_dir`. `progress` is told the archive's size in bytes as it grows.
pub async fn backup(
    owner: &PgConnectOptions,
    owner_url: &str,
    dir: &Path,
    key_dir: Option<&Path>,
    mut progress: impl FnMut(u64),
) -> Result<Manifest, BackupError> {
    if let Some(keys) = key_dir {
        apart_from_keys(dir, keys)?;
    }
    let binaries = ServerBinaries::locate()?;
    fresh_dir(dir, "backup")?;
    let archive = dir.join(ARCHIVE);

    // One snapshot for the archive and the manifest: exported by this transaction, which stays
    // open until pg_dump has read everything through it.
    let mut conn = owner.connect().await?;
    // Position what is committed first (the sequencer's own step): the manifest's head is
    // then the newest the log has, even with no `serve` running.
    crate::store::sequence(&mut conn).await?;
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let snapshot: String =
        sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut conn).await?;
    let mut manifest = figures(&mut conn).await?;

    let mut dump = pg_tool(&binaries, "pg_dump", owner_url);
    dump.arg("--format=custom").arg(format!("--snapshot={snapshot}")).arg("--file").arg(&archive);
    let mut child = dump.spawn().map_err(io(&binaries.path("pg_dump")))?;
    let mut stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io(&archive))? {
            break status;
        }
        progress(std::fs::metadata(&archive).map_or(0, |m| m.len()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stderr = errors.await.unwrap_or_default();
    conn.execute("COMMIT").await?;
    conn.close().await?;
    if !status.success() {
        return Err(BackupError::Tool {
            tool: "pg_dump",
            status: status.to_string(),
            stderr: stderr.trim().to_string(),
        });
    }

    // Sealed personal values, tokens' hashes: readable by this account alone, like the keys.
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o600))
        .map_err(io(&archive))?;
    sync(&archive)?;
    let (bytes, sha256) = sha256_file(&archive)?;
    progress(bytes);
    manifest.archive_bytes = bytes;
    manifest.archive_sha256 = sha256;
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises") + "\n";
    std::fs::write(&path, text).map_err(io(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io(&path))?;
    sync(&path)?;
    sync(dir)?;
    Ok(manifest)
}

/// Reads a backup's manifest and checks the archive against it (size and SHA-256).
pub fn read_backup(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        BackupError::Refused(format!(
            "{}: {e}; a backup directory holds {MANIFEST} and {ARCHIVE}, as `fundledger backup` \
             writes them",
            path.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        BackupError::Refused(format!("{}: not a fundledger backup manifest ({e})", path.display()))
    })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Refused(format!(
            "{}: format {} is not one this release reads ({FORMAT})",
            path.display(),
            manifest.format
        )));
    }
    let archive = dir.join(&manifest.archive);
    let (bytes, sha256) = sha256_file(&archive)?;
    if bytes != manifest.archive_bytes || sha256 != manifest.archive_sha256 {
        return Err(BackupError::Refused(format!(
            "{}: damaged or changed ({bytes} bytes, SHA-256 {sha256}; the manifest says \
             {} bytes, {}): nothing was restored",
            archive.display(),
            manifest.archive_bytes,
            manifest.archive_sha256
        )));
    }
    Ok(manifest)
}

/// Copies this ledger's key files from `key_dir` into `to` (new or empty, mode 0700, files
/// 0600). Returns the files copied.
pub fn backup_keys(key_files: &[PathBuf], to: &Path) -> Result<Vec<PathBuf>, BackupError> {
    fresh_dir(to, "key backup")?;
    let mut copied = Vec::new();
    for from in key_files.iter().filter(|f| f.is_file()) {
        let name = from.file_name().expect("a key file has a name");
        let dest = to.join(name);
        std::fs::copy(from, &dest).map_err(io(from))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&dest))?;
        sync(&dest)?;
        copied.push(dest);
    }
    sync(to)?;
    Ok(copied)
}

/// Puts the key files of a key backup (`from`) where this ledger looks for them: each is
/// copied unless the same file is already there; a different one there is refused.
pub fn restore_keys(from: &Path, destinations: &[PathBuf]) -> Result<(), BackupError> {
    for dest in destinations {
        let name = dest.file_name().expect("a key file has a name");
        let source = from.join(name);
        if !source.is_file() {
            continue;
        }
        let wanted = std::fs::read(&source).map_err(io(&source))?;
        match std::fs::read(dest) {
            Ok(present) if present == wanted => continue,
            Ok(_) => {
                return Err(BackupError::Refused(format!(
                    "{} exists and differs from {}: move it away first (keys are never \
                     overwritten)",
                    dest.display(),
                    source.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(dest)(e)),
        }
        crate::personal::keys::write_new(dest, &String::from_utf8_lossy(&wanted)).map_err(|e| {
            BackupError::Io { path: dest.clone(), source: std::io::Error::other(e.to_string()) }
        })?;
    }
    Ok(())
}

/// The roles the archive's privileges name: a new server has none of them yet. (The service's
/// login role is made when the restored ledger is opened.)
const ROLES: &str = "DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_writer') THEN
        CREATE ROLE fundledger_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundledger_maintenance') THEN
        CREATE ROLE fundledger_maintenance NOLOGIN;
    END IF;
END
$$";

/// Loads the archive of the backup in `dir` into the empty database at `owner_url`, in one
/// transaction: all of it or nothing. `progress` gets each step `pg_restore` reports.
pub async fn load(
    owner: &PgConnectOptions,
    owner_url: &str,
    dir: &Path,
    manifest: &Manifest,
    mut progress: impl FnMut(&str),
) -> Result<(), BackupError> {
    let binaries = ServerBinaries::locate()?;
    let mut conn = owner.connect().await?;
    let holds: Option<i64> = sqlx::query_scalar(
        "SELECT CASE WHEN to_regclass('public.events') IS NULL THEN NULL ELSE 1 END::bigint",
    )
    .fetch_one(&mut conn)
    .await?;
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await?;
    if holds.is_some() || tables > 0 {
        return Err(BackupError::Refused(format!(
            "the database to restore into is not empty ({tables} tables): a restore goes into a \
             new database (a new --data-dir, or a DATABASE_URL naming an empty database), never \
             over a ledger"
        )));
    }
    conn.execute(ROLES).await?;
    conn.close().await?;

    let archive = dir.join(&manifest.archive);
    let mut load = pg_tool(&binaries, "pg_restore", owner_url);
    load.args(["--no-owner", "--exit-on-error", "--single-transaction", "--verbose"]).arg(&archive);
    let mut child = load.spawn().map_err(io(&binaries.path("pg_restore")))?;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut said = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        progress(line.trim_start_matches("pg_restore: "));
        said.push(line);
        if said.len() > 40 {
            said.remove(0);
        }
    }
    let status = child.wait().await.map_err(io(&archive))?;
    if !status.success() {
        return Err(BackupError::Tool {
            tool: "pg_restore",
            status: status.to_string(),
            stderr: said.join("\n"),
        });
    }
    progress("re-stamping transaction ids");
    restamp(owner).await
}

/// Re-stamps the transaction ids a restored log carries, in one transaction as the owner.
///
/// The sequencer and the conditional append order and test events by the id of the
/// transaction that wrote them (`transaction_id`, `log.sealed_below`): counters of the server
/// they were written on, not part of the record (no hash covers them). In another cluster they
/// mean nothing, and ids from the source's future would keep every restored event "still
/// running": never visible to a condition (every command contended), never sequenced. So every
/// positioned event (and its tags) gets id 3, below anything this server will hand out; every
/// event not yet positioned gets this transaction's id, so the sequencer positions it, after
/// the head, once this commits; and every log row says it was sealed below 4.
const RESTAMP: &str = "
ALTER TABLE events DISABLE TRIGGER USER;
ALTER TABLE event_tags DISABLE TRIGGER USER;
ALTER TABLE log DISABLE TRIGGER USER;
UPDATE events e SET transaction_id =
       CASE WHEN EXISTS (SELECT 1 FROM log l WHERE l.event_id = e.id) THEN '3'::xid8
            ELSE pg_current_xact_id() END;
UPDATE event_tags t SET transaction_id = e.transaction_id FROM events e WHERE e.id = t.event_id;
UPDATE log SET sealed_below = '4'::xid8;
ALTER TABLE events ENABLE TRIGGER USER;
ALTER TABLE event_tags ENABLE TRIGGER USER;
ALTER TABLE log ENABLE TRIGGER USER;
";

/// [`RESTAMP`] on the restored database.
pub async fn restamp(owner: &PgConnectOptions) -> Result<(), BackupError> {
    let mut conn = owner.connect().await?;
    let mut tx = conn.begin().await?;
    tx.execute(RESTAMP).await?;
    tx.commit().await?;
    conn.close().await?;
    Ok(())
}

/// What a restore proved: the restored chain verified to the backup's head, with its
/// checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub events: i64,
    pub head_position: i64,
    pub head_hash: Option<String>,
    pub checkpoints_verified: usize,
    pub public_key: Option<String>,
}

/// Checks the restored ledger against the manifest: the chain verifies (signatures against
/// `trusted`), has the backup's hash at the backup's head, and every checkpoint the backup had.
pub async fn check_restored(
    conn: &mut PgConnection,
    manifest: &Manifest,
    trusted: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<Restored, BackupError> {
    crate::store::sequence(conn).await?;
    let at_head: Option<String> =
        sqlx::query_scalar("SELECT encode(hash, 'hex') FROM log WHERE position = $1")
            .bind(manifest.head_position)
            .fetch_optional(&mut *conn)
            .await?;
    if manifest.head_position > 0 && at_head != manifest.head_hash {
        return Err(BackupError::Refused(format!(
            "the restored chain has {} at position {}, the backup said {}",
            at_head.as_deref().unwrap_or("nothing"),
            manifest.head_position,
            manifest.head_hash.as_deref().unwrap_or("nothing")
        )));
    }
    let v = crate::audit::verify(conn, trusted, |_| {}).await?;
    if !v.ok {
        return Err(BackupError::Refused(format!(
            "the restored chain does not verify: {:?}",
            v.first_bad
        )));
    }
    if trusted.is_some() && (v.checkpoints_verified as i64) < manifest.checkpoints {
        return Err(BackupError::Refused(format!(
            "{} signed checkpoints verify in the restored ledger, the backup had {}",
            v.checkpoints_verified, manifest.checkpoints
        )));
    }
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await?;
    Ok(Restored {
        events,
        head_position: manifest.head_position,
        head_hash: manifest.head_hash.clone(),
        checkpoints_verified: v.checkpoints_verified,
        public_key: trusted.map(|k| hex::encode(k.to_bytes())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_command_line() {
        let (url, password) =
            libpq_target("postgres://owner:p%40ss@db.example:5433/ledger?sslmode=require");
        assert_eq!(url, "postgres://owner@db.example:5433/ledger?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss"));
        let (url, password) =
            libpq_target("postgres://fundledger@localhost/fundledger?host=/tmp/s");
        assert_eq!(url, "postgres://fundledger@localhost/fundledger?host=/tmp/s");
        assert_eq!(password, None);
    }

    #[test]
    fn a_data_backup_is_refused_inside_the_key_directory_and_around_it() {
        assert!(apart_from_keys(Path::new("/b/keys/backup"), Path::new("/b/keys")).is_err());
        assert!(apart_from_keys(Path::new("/b"), Path::new("/b/keys")).is_err());
        assert!(apart_from_keys(Path::new("/backups/ledger"), Path::new("/srv/keys")).is_ok());
    }
}
