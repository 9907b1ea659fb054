//! Policies enter the ledger as events: every shipped file publishes, a bad file is refused
//! with its line and field, and a refusal records nothing.

use std::path::Path;

use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish, published, PublishError};

fn shipped() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

async fn count(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn every_shipped_policy_publishes_and_reads_back_whole() {
    let db = TestDatabase::new().await;
    let files = shipped();
    assert_eq!(files.len(), 8, "the seven policies of the notices and the holiday calendar");
    for file in &files {
        let policy = load_policy_file(file).unwrap_or_else(|e| panic!("{e}"));
        publish(&db.pool, &policy, "test admin").await.unwrap();
        let back = published(&db.pool, &policy.id.to_string()).await.unwrap().expect("recorded");
        assert_eq!(back, policy, "{} reads back unchanged", file.display());
    }
    assert_eq!(count(&db).await, 8);
    // The Jining policy carries its 70-occupation urgent list inside the event.
    let data: serde_json::Value = sqlx::query_scalar(
        "SELECT data FROM events WHERE stream_id = 'policy-jining-2025-skill-upgrade'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(data.to_string().contains("模具工"), "the catalog travels with the policy");
}

#[tokio::test]
async fn publishing_twice_is_refused_and_records_nothing() {
    let db = TestDatabase::new().await;
    let policy = load_policy_file(&shipped()[0]).unwrap();
    publish(&db.pool, &policy, "test admin").await.unwrap();
    let err = publish(&db.pool, &policy, "test admin").await.unwrap_err();
    assert!(matches!(err, PublishError::AlreadyPublished(_)), "{err}");
    assert_eq!(count(&db).await, 1);
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_field() {
    let dir =
        std::env::temp_dir().join(format!("fundledger-policy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/shandong-2024-expansion-quota.toml"),
    )
    .unwrap();
    // 1.5 is a well-formed decimal but no ratio of a balance a quota may take.
    let bad = good.replacen("ratio = \"0.15\"", "ratio = \"1.5\"", 1);
    assert_ne!(bad, good);
    let path = dir.join("broken.toml");
    std::fs::write(&path, &bad).unwrap();
    let err = load_policy_file(&path).unwrap_err();
    let line = bad.lines().position(|l| l.starts_with("ratio")).unwrap() + 1;
    match &err {
        PublishError::Invalid { error, .. } => {
            assert_eq!(error.line, line, "{err}");
            assert!(error.field.ends_with("ratio"), "{err}");
        }
        other => panic!("expected an invalid-file error, got {other}"),
    }
    assert!(err.to_string().contains(&format!("broken.toml:{line}: field `ratio`")), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn jining_copy(n: usize) -> policy::Policy {
    let mut p = load_policy_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/jining-2025-skill-upgrade.toml"),
    )
    .unwrap();
    p.id = policy::PolicyId::parse(&format!("jining-2025-skill-upgrade-copy-{n}")).unwrap();
    p
}

#[tokio::test]
async fn a_policy_overlapping_a_published_one_is_refused() {
    let db = TestDatabase::new().await;
    for file in shipped() {
        publish(&db.pool, &load_policy_file(&file).unwrap(), "test admin").await.unwrap();
    }
    let err = publish(&db.pool, &jining_copy(1), "test admin").await.unwrap_err();
    match &err {
        PublishError::Overlaps { id, other } => {
            assert_eq!(
                (id.as_str(), other.as_str()),
                ("jining-2025-skill-upgrade-copy-1", "jining-2025-skill-upgrade")
            );
        }
        other => panic!("expected an overlap, got {other}"),
    }
    assert_eq!(count(&db).await, 8, "the refused policy records nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_overlapping_policies_published_at_once_exactly_one_gets_in() {
    const PUBLISHERS: usize = 8;
    let db = TestDatabase::new().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(PUBLISHERS));
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|n| {
            let (pool, barrier) = (db.pool.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                publish(&pool, &jining_copy(n), "test admin").await
            })
        })
        .collect();
    let mut published = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => published += 1,
            Err(PublishError::Overlaps { .. }) => {}
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!(published, 1);
    assert_eq!(count(&db).await, 1);
}
