//! Issue 15, backup and restore: `fundledger backup` is taken while four clients submit,
//! review, notice, pay and settle over HTTP and a checkpoint is signed; the keys are backed up
//! apart (`keys backup`); `fundledger restore` loads it into a brand-new private cluster. The
//! restored chain is the source's, position by position, to the backup's head hash; the signed
//! checkpoints verify; every read model equals a rebuild; and `serve` on the restored ledger
//! answers the old tokens and records new work. A damaged archive, a restore over a ledger
//! and a restore without the keys are refused, and record nothing.

mod chaos;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chaos::{free_port, set_up, tables, tokens_for, training, Client, Seen, Server};
use fundledger::postgres::testing::{url_of, TestDatabase};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

/// Removes a directory however the test ends, stopping a private cluster left under it.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let data = self.0.join("data");
        if data.join("pg").exists() {
            let _ =
                fundledger_cmd(&["--data-dir", data.to_str().unwrap(), "cluster", "stop"], None);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary with `args`; `url` as DATABASE_URL, or none (a private cluster).
fn fundledger_cmd(args: &[&str], url: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fundledger"));
    match url {
        Some(url) => c.env("DATABASE_URL", url),
        None => c.env_remove("DATABASE_URL"),
    };
    c.env_remove("FUNDLEDGER_CHECKPOINT_PUBLIC_KEY").args(args).output().unwrap()
}

fn succeeded(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or(Value::Null)
}

fn refused(out: &Output, what: &str, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} was accepted");
    assert!(stderr.contains(says), "{what}: expected `{says}` in: {stderr}");
}

/// (position, hash) of the chain up to `head`.
async fn chain(conn: &mut PgConnection, head: i64) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT position, encode(hash, 'hex') FROM log WHERE position <= $1 ORDER BY position",
    )
    .bind(head)
    .fetch_all(conn)
    .await
    .unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_into_a_new_cluster_with_the_same_chain_and_serves() {
    // The source: a ledger served over HTTP, under load.
    let db = TestDatabase::new().await;
    let url = url_of(&db.name);
    let tokens = tokens_for(&url).await;
    let scratch = std::env::temp_dir().join(format!("fundledger-backup-{}", uuid::Uuid::new_v4()));
    let _scratch = Scratch(scratch.clone());
    let source_dir = scratch.join("source");
    let key_dir = source_dir.join("keys");
    let port = free_port();
    let mut server = Server::new(url.clone(), &source_dir, port);
    server.start().await;
    set_up(port, &tokens).await;
    let seen = Arc::new(Seen::default());
    let done = Arc::new(AtomicBool::new(false));
    let client = Client::new(port, &tokens, seen.clone());
    let clients = chaos::drive(&client, 4, 1, &done).await;

    // Mid-load: a signed checkpoint, then the backup, then the keys apart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = fundledger_cmd(&["--key-dir", path(&key_dir), "checkpoint"], Some(&url));
    assert!(out.status.success(), "checkpoint: {}", String::from_utf8_lossy(&out.stderr));
    let public_key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("public key: ").map(str::to_string))
        .expect("checkpoint prints the public key");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backup = scratch.join("backup");
    let keys = scratch.join("key-backup");
    let answered_before = seen.answered.lock().unwrap().len();
    let manifest = succeeded(
        &fundledger_cmd(&["--key-dir", path(&key_dir), "backup", path(&backup)], Some(&url)),
        "backup",
    );
    let answered_during = seen.answered.lock().unwrap().len();
    // The keys are never inside a data backup, and a data backup is never made among the keys.
    refused(
        &fundledger_cmd(
            &["--key-dir", path(&key_dir), "backup", path(&key_dir.join("b"))],
            Some(&url),
        ),
        "a backup inside the key directory",
        "overlap",
    );
    succeeded(
        &fundledger_cmd(&["--key-dir", path(&key_dir), "keys", "backup", path(&keys)], Some(&url)),
        "keys backup",
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    done.store(true, Ordering::Relaxed);
    let rounds = clients.await.unwrap();
    server.stop();
    let answered_after = seen.answered.lock().unwrap().len();
    assert!(
        answered_during > answered_before && answered_after > answered_during,
        "the backup was not taken under load ({answered_before} → {answered_during} → \
         {answered_after} answers)"
    );

    let head = manifest["head_position"].as_i64().unwrap();
    let head_hash = manifest["head_hash"].as_str().unwrap().to_string();
    assert!(manifest["checkpoints"].as_i64().unwrap() >= 1, "{manifest}");
    assert!(!backup.join("personal.key").exists() && !backup.join("checkpoint.key").exists());
    for f in ["personal.key", "checkpoint.key"] {
        assert!(keys.join(f).is_file(), "{f} not in the key backup");
    }
    let mut source = PgConnectOptions::from_str(&url).unwrap().connect().await.unwrap();
    let source_chain = chain(&mut source, head).await;
    let source_total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM log").fetch_one(&mut source).await.unwrap();
    assert!(source_total > head, "the load went on after the backup: the test proves nothing");

    // Refusals first: each leaves no ledger behind.
    let target = scratch.join("restored");
    let target_data = target.join("data");
    let target_keys = target.join("keys");
    let restore_args = |dir: &Path, with_keys: bool| {
        let mut a = vec![
            "--data-dir".to_string(),
            path(&target_data).to_string(),
            "--key-dir".to_string(),
            path(&target_keys).to_string(),
            "restore".to_string(),
            path(dir).to_string(),
        ];
        if with_keys {
            a.extend(["--keys".to_string(), path(&keys).to_string()]);
        }
        a
    };
    let run = |args: Vec<String>| {
        fundledger_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)
    };
    refused(&run(restore_args(&backup, false)), "a restore without the keys", "--keys");
    let damaged = scratch.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::copy(backup.join("manifest.json"), damaged.join("manifest.json")).unwrap();
    let mut archive = std::fs::read(backup.join("ledger.dump")).unwrap();
    let middle = archive.len() / 2;
    archive[middle] ^= 1;
    std::fs::write(damaged.join("ledger.dump"), archive).unwrap();
    refused(&run(restore_args(&damaged, true)), "a damaged archive", "damaged or changed");
    assert!(!target_data.exists(), "a refused restore created a cluster");

    // The restore, into a new private cluster.
    let restored = succeeded(&run(restore_args(&backup, true)), "restore");
    assert_eq!(restored["head_position"].as_i64(), Some(head), "{restored}");
    assert_eq!(restored["head_hash"].as_str(), Some(head_hash.as_str()), "{restored}");
    assert!(restored["checkpoints_verified"].as_u64().unwrap() >= 1, "{restored}");
    refused(&run(restore_args(&backup, true)), "a restore over a ledger", "not empty");

    // An auditor's verification with the key they trust.
    let verified = succeeded(
        &fundledger_cmd(
            &[
                "--data-dir",
                path(&target_data),
                "--key-dir",
                path(&target_keys),
                "verify",
                "--public-key",
                &public_key,
            ],
            None,
        ),
        "verify of the restored ledger",
    );
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["checkpoints_verified"].as_u64().unwrap() >= 1, "{verified}");

    // It serves: the old tokens work, new work is recorded.
    let port = free_port();
    let mut restored_server = Server::new(String::new(), &target, port);
    restored_server.start().await;
    let cluster = fundledger::postgres::Cluster::new(&target_data).unwrap();
    let mut conn = cluster.connect_options("fundledger").connect().await.unwrap();
    let restored_chain = chain(&mut conn, head).await;
    assert_eq!(restored_chain.len(), source_chain.len());
    assert!(restored_chain == source_chain, "the restored chain differs from the source's");
    let live = tables(&mut conn).await;
    fundledger::rebuild::rebuild(&mut conn, |_| {}).await.unwrap();
    assert_eq!(live, tables(&mut conn).await, "restored read models differ from a rebuild");
    let r = chaos::send(
        port,
        "POST",
        "/v1/applications",
        Some(&tokens["clerk"]),
        Some("after-restore"),
        Some(&training(9_999_999)),
    )
    .await
    .unwrap();
    assert_eq!(
        r.status,
        201,
        "a submission to the restored ledger: {}\n{}",
        r.text,
        restored_server.log()
    );
    let after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut conn).await.unwrap();
    assert!(after > restored["events"].as_i64().unwrap());
    // Every restored event and the new one get their positions: the sequencer runs on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let positioned: i64 =
            sqlx::query_scalar("SELECT count(*) FROM log").fetch_one(&mut conn).await.unwrap();
        if positioned == after {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{positioned} of {after} events positioned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(conn);
    restored_server.stop();
    eprintln!(
        "{rounds} rounds of load; backup at position {head} of {source_total}; {} events restored",
        restored["events"]
    );
}
