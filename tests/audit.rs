//! The audit hash chain against real PostgreSQL: the chain the sequencer computes is the one
//! the verifier recomputes from the rows (also for text that needs escaping), and tampering
//! with the log as the owner, triggers disabled, is found and named by position.

use events::{Metadata, Tag};
use fundledger::audit::{verify, Verification};
use fundledger::postgres::testing::TestDatabase;
use fundledger::store::{append, sequence, Append, NewEvent};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const EVENTS: i64 = 40;

/// Events whose text exercises the canonical form: quotes, backslashes, control characters,
/// Chinese, numbers with trailing zeros, nested objects, missing business dates.
fn event(i: i64) -> NewEvent {
    NewEvent {
        stream_id: format!("application-{}", i % 7),
        event_type: "TestHappened".to_string(),
        schema_version: 1 + (i % 2) as i32,
        data: json!({
            "i": i, "amount": format!("{}.50", i * 100), "ratio": 0.150,
            "name": "王\"小\\五\n\t\u{1}", "nested": {"b": [1, 2.0, null, true], "a": {}},
            "longer_key_first_in_input": "x", "z": "",
        }),
        metadata: Metadata { actor: Some("审核 赵".into()), ..Metadata::default() },
        tags: if i % 3 == 0 { vec![] } else { vec![Tag::parse(&format!("person:p{i}")).unwrap()] },
        business_date: (i % 4 != 0).then(|| chrono::NaiveDate::from_ymd_opt(2024, 5, 6).unwrap()),
    }
}

async fn history() -> TestDatabase {
    let db = TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    for i in 0..EVENTS {
        let mut tx = conn.begin().await.unwrap();
        // Appends of one and of two events, in separate sequencer batches now and then.
        let mut events = vec![event(i)];
        if i % 5 == 0 {
            events.push(event(i + 1000));
        }
        append(&mut tx, &Append { events, ..Append::default() }).await.unwrap();
        tx.commit().await.unwrap();
        if i % 9 == 0 {
            sequence(&mut conn).await.unwrap();
        }
    }
    // Everything positioned before anyone looks (other tests' open transactions on the shared
    // cluster can hold a batch back for a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.unwrap();
    while sequence(&mut conn).await.unwrap().map(|p| p.0) != Some(events) {
        assert!(std::time::Instant::now() < deadline, "the log was not sequenced");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(conn);
    db
}

async fn check(db: &TestDatabase) -> Verification {
    let mut conn = db.pool.acquire().await.unwrap();
    verify(&mut conn, |_| {}).await.unwrap()
}

async fn total(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap()
}

/// As the owner, with the append-only triggers off: what someone with database access could do.
async fn tamper(db: &TestDatabase, sql: &str) {
    let mut owner: PgConnection = db.owner_connection().await;
    let mut tx = owner.begin().await.unwrap();
    for table in ["events", "log", "event_tags"] {
        sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    for table in ["events", "log", "event_tags"] {
        sqlx::query(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_untouched_log_verifies_and_the_sequencer_and_verifier_agree() {
    let db = history().await;
    let v = check(&db).await;
    assert!(v.ok, "{v:?}");
    let n = total(&db).await;
    assert_eq!((v.events_checked, v.head_position), (n, n));
    let head: Vec<u8> = sqlx::query_scalar("SELECT hash FROM log ORDER BY position DESC LIMIT 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(v.head_hash, Some(hex::encode(head)));
    // The stored canonical text is the one documented: position first, then the stream.
    let text: String = sqlx::query_scalar(
        "SELECT convert_from(fundledger_canonical(l.position, e), 'UTF8') FROM log l JOIN events e ON e.id = l.event_id WHERE l.position = 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(text.starts_with("[1, \"application-0\", 1, \"TestHappened\", 1, null, \""), "{text}");
}

#[tokio::test]
async fn a_changed_row_is_named_by_its_position() {
    let db = history().await;
    tamper(&db, "UPDATE events SET data = jsonb_set(data, '{amount}', '\"9999.50\"') WHERE id = (SELECT event_id FROM log WHERE position = 17)").await;
    let v = check(&db).await;
    assert!(!v.ok);
    let bad = v.first_bad.unwrap();
    assert_eq!(bad.position, 17, "{}", bad.problem);
    assert!(bad.problem.contains("content"), "{}", bad.problem);
    assert_eq!(v.events_checked, 16);
}

#[tokio::test]
async fn a_deleted_row_is_named_by_its_position() {
    let db = history().await;
    tamper(&db, "DELETE FROM events WHERE id = (SELECT event_id FROM log WHERE position = 23)")
        .await;
    let v = check(&db).await;
    assert_eq!(v.first_bad.map(|b| b.position), Some(23));

    let db = history().await;
    tamper(&db, "DELETE FROM log WHERE position = 8").await;
    let v = check(&db).await;
    let bad = v.first_bad.unwrap();
    assert_eq!(bad.position, 8, "{}", bad.problem);
    assert!(bad.problem.contains("missing"));
}

#[tokio::test]
async fn a_row_inserted_in_the_middle_breaks_the_chain_where_it_joins() {
    let db = history().await;
    // The forger shifts the tail by one and inserts an event at position 12 whose own hash is
    // correctly computed from position 11: the chain breaks at the next one, whose content
    // (its position) and prev_hash no longer match.
    let mut owner = db.owner_connection().await;
    let mut tx = owner.begin().await.unwrap();
    sqlx::query("ALTER TABLE log DISABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
    sqlx::query("UPDATE log SET position = position + 1000000 WHERE position >= 12")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE log SET position = position - 1000000 + 1 WHERE position >= 1000000")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "WITH forged AS (INSERT INTO events (stream_id, stream_version, event_type, schema_version, data, transaction_id) \
                         VALUES ('application-forged', 1, 'PayoutIssued', 1, '{\"amount\": \"50000.00\"}', '3') RETURNING *) \
         INSERT INTO log (position, event_id, sealed_below, prev_hash, hash) \
         SELECT 12, f.id, l.sealed_below, l.hash, sha256(l.hash || fundledger_canonical(12, f)) \
           FROM forged f, log l WHERE l.position = 11",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE log ENABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE events ENABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let v = check(&db).await;
    let bad = v.first_bad.expect("the insertion is found");
    assert_eq!(bad.position, 13, "{}", bad.problem);
    assert_eq!(v.events_checked, 12, "up to the forged row the chain is intact");
}
