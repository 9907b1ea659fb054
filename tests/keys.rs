//! Issue 12: lost keys stop the service, they do not start a new ledger. The key files are
//! checked against the check values the database recorded; a key is created only for a ledger
//! with nothing it could be missing for; sealing keys rotate without losing old values.

use std::path::{Path, PathBuf};
use std::process::Command;

use events::Metadata;
use fundledger::key_checks::{self, KeyCheckError};
use fundledger::personal::{Field, Keys, Sealed};
use fundledger::postgres::testing::TestDatabase;
use fundledger::store::{append, Append, NewEvent};
use sqlx::{Connection, Executor};

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fundledger-{what}-{}", uuid::Uuid::new_v4().simple()))
}

async fn append_one(db: &TestDatabase) {
    let mut conn = db.pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let event = NewEvent {
        stream_id: "s-1".into(),
        event_type: "TestHappened".into(),
        schema_version: 1,
        data: serde_json::json!({}),
        metadata: Metadata::default(),
        tags: vec![],
        business_date: None,
    };
    append(&mut tx, &Append { events: vec![event], ..Append::default() }).await.unwrap();
    tx.commit().await.unwrap();
    // Positioned before anything signs the head: the sequencer waits for every open writer of
    // the cluster (the other tests' too), so it may take a few rounds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let head = fundledger::store::sequence(&mut conn).await.unwrap();
        if head.is_some_and(|p| p.0 > 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the event was never positioned");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn refusal(result: Result<Keys, KeyCheckError>) -> String {
    match result {
        Err(KeyCheckError::Refused(sentence)) => sentence,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn keys_are_created_for_an_empty_ledger_only_and_a_missing_file_is_refused_after() {
    let db = TestDatabase::new().await;
    let dir = temp_dir("keys");
    let path = dir.join("personal.key");
    let created = key_checks::personal(&db.owner, &path).await.unwrap();
    assert!(path.is_file(), "created for the empty ledger");
    let again = key_checks::personal(&db.owner, &path).await.unwrap();
    let sealed = Sealed::seal(&created, Field::Name, "王小五");
    assert_eq!(sealed.open(&again, Field::Name).unwrap(), "王小五", "the same keys read back");

    // Lost after the ledger has its keys: refused, naming the file, never recreated.
    std::fs::rename(&path, dir.join("moved-away")).unwrap();
    let sentence = refusal(key_checks::personal(&db.owner, &path).await);
    assert!(sentence.contains("personal-data key file"), "{sentence}");
    assert!(sentence.contains(&path.display().to_string()), "names where: {sentence}");
    assert!(sentence.contains("missing") && sentence.contains("backup"), "{sentence}");
    assert!(!path.exists(), "no new key file was written");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_ledger_with_events_and_no_key_anywhere_is_refused_rather_than_given_new_keys() {
    let db = TestDatabase::new().await;
    append_one(&db).await;
    let path = temp_dir("keys").join("personal.key");
    let sentence = refusal(key_checks::personal(&db.owner, &path).await);
    assert!(sentence.contains("already holds events"), "{sentence}");
    assert!(!path.exists());
}

#[tokio::test]
async fn a_different_key_file_is_refused_and_says_which_key_does_not_match() {
    let db = TestDatabase::new().await;
    let dir = temp_dir("keys");
    let path = dir.join("personal.key");
    key_checks::personal(&db.owner, &path).await.unwrap();
    append_one(&db).await;
    std::fs::remove_file(&path).unwrap();
    Keys::generate().create(&path).unwrap();
    let sentence = refusal(key_checks::personal(&db.owner, &path).await);
    assert!(sentence.contains("is not this ledger's"), "{sentence}");
    assert!(sentence.contains("person-key (HMAC) key"), "{sentence}");
    assert!(sentence.contains(&path.display().to_string()), "{sentence}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_rotated_key_seals_new_values_while_old_ones_still_open_and_an_older_copy_is_refused() {
    let db = TestDatabase::new().await;
    let dir = temp_dir("keys");
    let path = dir.join("personal.key");
    let first = key_checks::personal(&db.owner, &path).await.unwrap();
    let old = Sealed::seal(&first, Field::IdNumber, "11010519491231002X");
    // A value written before sealed values carried a key id.
    let legacy = Sealed::seal(&first, Field::Name, "张小三").as_str().replacen("k1:", "", 1);
    let legacy: Sealed = serde_json::from_value(serde_json::json!(legacy)).unwrap();
    std::fs::copy(&path, dir.join("backup-before-rotation")).unwrap();

    let rotated = key_checks::rotate(&db.owner, &path).await.unwrap();
    assert_eq!(rotated.current_seal_id(), 2);
    let reread = key_checks::personal(&db.owner, &path).await.unwrap();
    let new = Sealed::seal(&reread, Field::Name, "李四");
    assert_eq!(new.key_id(), Ok(2), "new values are sealed under the new key");
    assert_eq!(old.open(&reread, Field::IdNumber).unwrap(), "11010519491231002X");
    assert_eq!(legacy.open(&reread, Field::Name).unwrap(), "张小三");
    assert_eq!(new.open(&reread, Field::Name).unwrap(), "李四");
    let recorded: Vec<(String, i32)> =
        sqlx::query_as("SELECT name, key_id FROM key_checks ORDER BY name, key_id")
            .fetch_all(&mut db.owner_connection().await)
            .await
            .unwrap();
    let pairs = |v: &[(&str, i32)]| v.iter().map(|(n, i)| (n.to_string(), *i)).collect::<Vec<_>>();
    assert_eq!(recorded, pairs(&[("person", 1), ("seal", 1), ("seal", 2)]));

    // The backup from before the rotation lacks key 2: refused, not silently used.
    std::fs::copy(dir.join("backup-before-rotation"), &path).unwrap();
    let sentence = refusal(key_checks::personal(&db.owner, &path).await);
    assert!(sentence.contains("no sealing key 2") && sentence.contains("older copy"), "{sentence}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_checkpoint_key_is_created_only_before_the_first_checkpoint_and_never_replaced() {
    let db = TestDatabase::new().await;
    append_one(&db).await;
    let dir = temp_dir("keys");
    let path = dir.join("checkpoint.key");
    let key = key_checks::checkpoint(&db.owner, &path).await.unwrap();
    fundledger::checkpoints::record(&db.pool, &key, "test").await.unwrap();
    std::fs::remove_file(&path).unwrap();
    let Err(KeyCheckError::Refused(sentence)) = key_checks::checkpoint(&db.owner, &path).await
    else {
        panic!("a lost checkpoint key must be refused");
    };
    assert!(sentence.contains("checkpoint signing key file") && sentence.contains("missing"));
    assert!(sentence.contains("--checkpoint-every 0"), "{sentence}");
    assert!(!path.exists());

    // Another signing key in its place: refused too.
    let other = fundledger::checkpoints::create(&path).unwrap();
    assert_ne!(other.to_bytes(), key.to_bytes());
    let Err(KeyCheckError::Refused(sentence)) = key_checks::checkpoint(&db.owner, &path).await
    else {
        panic!("another checkpoint key must be refused");
    };
    assert!(sentence.contains("is not this ledger's"), "{sentence}");
    assert!(sentence.contains("checkpoint signing key"), "{sentence}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The service's role may read the check values, never write them: a compromised service
/// cannot make the database accept its own keys.
#[tokio::test]
async fn the_service_cannot_rewrite_the_check_values() {
    let db = TestDatabase::new().await;
    let path = temp_dir("keys").join("personal.key");
    key_checks::personal(&db.owner, &path).await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    for sql in [
        "UPDATE key_checks SET check_value = sha256('x')",
        "DELETE FROM key_checks",
        "INSERT INTO key_checks (name, key_id, check_value) VALUES ('seal', 7, sha256('x'))",
    ] {
        let err = conn.execute(sql).await.expect_err(sql);
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

fn fundledger(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("FUNDLEDGER_KEY_FILE")
        .env_remove("FUNDLEDGER_KEY_DIR")
        .output()
        .unwrap()
}

/// The command line: `serve` and the other commands refuse to run with a missing or different
/// key file, with the sentence on stderr, and run again once the right file is back.
#[test]
fn serve_and_the_commands_refuse_a_missing_or_different_key_file() {
    let data_dir = temp_dir("keys-cli");
    let ok = fundledger(
        &data_dir,
        &["token", "create", "--role", "admin", "--label", "管理员", "--person", "admin-1"],
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let published = fundledger(
        &data_dir,
        &[
            "policy",
            "publish",
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies/liaocheng-2024-training.toml"),
        ],
    );
    assert!(published.status.success(), "{}", String::from_utf8_lossy(&published.stderr));
    let key_file = std::path::absolute(data_dir.join("keys/personal.key")).unwrap();
    let saved = data_dir.join("personal.key.saved");
    std::fs::rename(&key_file, &saved).unwrap();

    let serve = ["serve", "--listen", "127.0.0.1:0"];
    for args in [&serve[..], &["token", "list"], &["replay"], &["keys", "check"]] {
        let out = fundledger(&data_dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran without its key file");
        assert!(
            err.contains(&format!("the personal-data key file {} is missing", key_file.display())),
            "{args:?}: {err}"
        );
        assert!(!key_file.exists(), "{args:?} created a new key file");
    }

    Keys::generate().create(&key_file).unwrap();
    for args in [&serve[..], &["token", "list"]] {
        let out = fundledger(&data_dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran with another ledger's key file");
        assert!(err.contains("is not this ledger's"), "{args:?}: {err}");
    }

    std::fs::rename(&saved, &key_file).unwrap();
    let listed = fundledger(&data_dir, &["token", "list"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("管理员"));
    let rotated = fundledger(&data_dir, &["keys", "rotate"]);
    let out = String::from_utf8_lossy(&rotated.stdout);
    assert!(out.contains("sealed under key id 2"), "{out}");
    std::fs::remove_dir_all(&data_dir).unwrap();
}
