//! The audit hash chain against real PostgreSQL: the chain the sequencer computes is the one
//! the verifier recomputes from the rows (also for text that needs escaping), and tampering
//! with the log as the owner, triggers disabled, is found and named by position.

use ed25519_dalek::{SigningKey, VerifyingKey};
use events::{Metadata, Tag};
use fundledger::audit::{verify, verify_window, Verification};
use fundledger::checkpoints;
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
    drop(conn);
    sequence_all(&db).await;
    db
}

/// Everything positioned before anyone looks (other tests' open transactions on the shared
/// cluster can hold a batch back for a moment).
async fn sequence_all(db: &TestDatabase) {
    let mut conn = db.pool.acquire().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.unwrap();
    while sequence(&mut conn).await.unwrap().map(|p| p.0) != Some(events) {
        assert!(std::time::Instant::now() < deadline, "the log was not sequenced");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn check(db: &TestDatabase) -> Verification {
    check_signed(db, None).await
}

async fn check_signed(db: &TestDatabase, trusted: Option<&VerifyingKey>) -> Verification {
    let mut conn = db.pool.acquire().await.unwrap();
    verify(&mut conn, trusted, |_| {}).await.unwrap()
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

#[tokio::test]
async fn a_chain_rewritten_with_fresh_hashes_is_caught_by_a_signed_checkpoint() {
    let db = history().await;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let signed = checkpoints::record(&db.pool, &key, "test").await.unwrap();
    sequence_all(&db).await;
    let v = check_signed(&db, Some(&key.verifying_key())).await;
    assert!(v.ok, "{v:?}");
    assert_eq!((v.checkpoints_verified, v.signed_through), (1, Some(signed.position)));

    // Someone with the database but without the key changes position 5 and recomputes every
    // hash after it: the chain alone verifies again...
    tamper(
        &db,
        "DO $$ DECLARE v_prev bytea; r record; BEGIN \
           UPDATE events SET data = jsonb_set(data, '{amount}', '\"1.50\"') \
            WHERE id = (SELECT event_id FROM log WHERE position = 5); \
           SELECT hash INTO v_prev FROM log WHERE position = 4; \
           FOR r IN SELECT l.position, e FROM log l JOIN events e ON e.id = l.event_id \
                     WHERE l.position >= 5 ORDER BY l.position LOOP \
             UPDATE log SET prev_hash = v_prev, hash = sha256(v_prev || fundledger_canonical(r.position, r.e)) \
              WHERE position = r.position RETURNING hash INTO v_prev; \
           END LOOP; END $$",
    )
    .await;
    assert!(check(&db).await.ok, "without checkpoints a full rewrite goes unseen");
    // ...but not against the signed checkpoint.
    let v = check_signed(&db, Some(&key.verifying_key())).await;
    let bad = v.first_bad.expect("the rewrite is caught");
    assert_eq!(bad.position, signed.position, "{}", bad.problem);
    assert!(bad.problem.contains("signed checkpoint"), "{}", bad.problem);
}

#[tokio::test]
async fn a_checkpoint_signed_with_another_key_is_refused() {
    let db = history().await;
    let trusted = SigningKey::generate(&mut rand::rngs::OsRng);
    let forger = SigningKey::generate(&mut rand::rngs::OsRng);
    checkpoints::record(&db.pool, &trusted, "test").await.unwrap();
    checkpoints::record(&db.pool, &forger, "forger").await.unwrap();
    sequence_all(&db).await;
    let v = check_signed(&db, Some(&trusted.verifying_key())).await;
    let bad = v.first_bad.expect("the forged checkpoint is refused");
    assert!(bad.problem.contains("not signed by the trusted key"), "{}", bad.problem);
    let position: i64 = sqlx::query_scalar(
        "SELECT l.position FROM log l JOIN events e ON e.id = l.event_id WHERE e.metadata->>'actor' = 'forger'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(bad.position, position, "named by the forged checkpoint's own position");
}

#[tokio::test]
async fn an_export_of_100000_events_verifies_offline_and_a_changed_line_is_named() {
    let db = TestDatabase::new().await;
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_type, schema_version, data, metadata, tags, business_date) \
         SELECT 'application-' || g, 1, 'ApplicationSubmitted', 1, \
                jsonb_build_object('application', 'a' || g, 'amount', '600.00', 'name_masked', '王*五', 'n', g), \
                '{\"actor\": \"经办 李\"}', ARRAY['person:p' || g], '2024-10-20' \
           FROM generate_series(1, 100000) g",
    )
    // A bulk fill as the owner: the service may append only through fundledger_append.
    .execute(&mut db.owner_connection().await)
    .await
    .unwrap();
    sequence_all(&db).await;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    checkpoints::record(&db.pool, &key, "test").await.unwrap();
    sequence_all(&db).await;

    let mut lines = Vec::new();
    let mut conn = db.pool.acquire().await.unwrap();
    let written = fundledger::audit::export(&mut conn, 1, |l| {
        lines.push(serde_json::to_string(&l).unwrap());
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(written, 100_001);
    let online = verify(&mut conn, Some(&key.verifying_key()), |_| {}).await.unwrap();

    let offline =
        fundledger::audit::verify_export(lines.iter().cloned().map(Ok), Some(&key.verifying_key()))
            .unwrap();
    assert!(offline.ok, "{offline:?}");
    assert_eq!((offline.events_checked, offline.checkpoints_verified), (100_001, 1));
    assert_eq!(offline.head_hash, online.head_hash, "the same chain as the database's");

    // A later part of the export verifies from its own first prev_hash.
    let tail =
        fundledger::audit::verify_export(lines[50_000..].iter().cloned().map(Ok), None).unwrap();
    assert!(tail.ok && tail.events_checked == 50_001, "{tail:?}");

    // One amount changed in the file: named by its position.
    let mut changed = lines.clone();
    changed[41_999] = changed[41_999].replace("600.00", "6000.00");
    let v = fundledger::audit::verify_export(changed.into_iter().map(Ok), None).unwrap();
    assert_eq!(v.first_bad.map(|b| b.position), Some(42_000));
    // A line dropped: the gap is named.
    let mut dropped = lines.clone();
    dropped.remove(76_542);
    let v = fundledger::audit::verify_export(dropped.into_iter().map(Ok), None).unwrap();
    assert_eq!(v.first_bad.map(|b| b.position), Some(76_543));

    // The same change in the database, five pages in (the verifier reads a page while it
    // checks the one before): named by its position, the chain intact up to it.
    drop(conn);
    tamper(
        &db,
        "UPDATE events SET data = jsonb_set(data, '{amount}', '\"6000.00\"') \
          WHERE id = (SELECT event_id FROM log WHERE position = 42000)",
    )
    .await;
    let mut conn = db.pool.acquire().await.unwrap();
    let v = verify(&mut conn, None, |_| {}).await.unwrap();
    assert_eq!(v.first_bad.as_ref().map(|b| b.position), Some(42_000));
    assert_eq!(v.events_checked, 41_999);
    // The walk stopped reading mid-stream; the connection it used is whole again.
    let again = verify(&mut conn, None, |_| {}).await.unwrap();
    assert_eq!(again, v);
}

/// The whole-chain walk reads the rows by binary COPY; the window and the export by query.
/// Both readers give the same rows, byte for byte: escaped and Chinese text, missing business
/// dates, empty tag lists, a deleted event row, and ranges that start and end anywhere.
#[tokio::test]
async fn the_copy_stream_and_the_paged_read_give_the_same_rows() {
    let db = history().await;
    tamper(&db, "DELETE FROM events WHERE id = (SELECT event_id FROM log WHERE position = 9)")
        .await;
    let mut conn = db.pool.acquire().await.unwrap();
    let mut paged = Vec::new();
    fundledger::audit::export(&mut conn, 1, |l| {
        paged.push(l);
        Ok(())
    })
    .await
    .unwrap();
    let head = paged.len() as i64;
    assert!(head > 40, "{head}");
    let mut streamed = Vec::new();
    for (after, through) in [(0, 1), (1, 17), (17, head - 3), (head - 3, head), (head, head + 5)] {
        let (sender, mut received) = tokio::sync::mpsc::channel(100);
        let all = fundledger::audit::stream_rows(&mut conn, after, through, &sender).await.unwrap();
        assert!(all);
        drop(sender);
        while let Some(batch) = received.recv().await {
            streamed.extend(batch);
        }
    }
    assert_eq!(streamed.len(), paged.len());
    for (row, line) in streamed.iter().zip(&paged) {
        assert_eq!(row.position, line.position);
        assert_eq!(row.present, row.position != 9);
        let canonical = String::from_utf8(fundledger::audit::canonical(row)).unwrap();
        assert_eq!(canonical, line.canonical, "position {}", row.position);
        assert_eq!(hex::encode(row.hash.as_deref().unwrap()), line.hash);
        assert_eq!(hex::encode(row.prev_hash.as_deref().unwrap()), line.prev_hash);
    }
    assert!(streamed.iter().any(|r| r.business_date.is_none() && r.tags.is_empty()));
    assert!(streamed.iter().any(|r| r.business_date.is_some() && !r.tags.is_empty()));
}

/// `GET /v1/audit/verify` trusts the public key it was configured with, never the signing key
/// the same process may hold; without one it verifies the chain and says it checked no
/// signature.
#[tokio::test]
async fn the_server_trusts_only_a_configured_public_key_and_says_when_it_has_none() {
    use fundledger::http::{router, AppState, Limits};
    use fundledger::personal::Keys;
    use fundledger::tokens::{self, Role, Scope};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let db = history().await;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    checkpoints::record(&db.pool, &key, "test").await.unwrap();
    sequence_all(&db).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let token = tokens::create(&mut conn, &[Role::Auditor], &Scope::All, "审计 钱", "audit-qian")
        .await
        .unwrap();
    drop(conn);
    let other = SigningKey::generate(&mut rand::rngs::OsRng).verifying_key();
    for (configured, expected) in [
        (None, (true, false, 0)),
        (Some(key.verifying_key()), (true, true, 1)),
        (Some(other), (false, true, 0)),
    ] {
        let mut state = AppState::new(db.pool.clone(), Keys::generate(), Limits::default());
        state.checkpoint_public_key = configured;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!(
                "GET /v1/audit/verify HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\
                 authorization: Bearer {token}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).await.unwrap();
        server.abort();
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        // A chunked body: the JSON object is the line that starts with `{`.
        let json = body.lines().find(|l| l.starts_with('{')).unwrap_or(body);
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            (
                v["ok"].as_bool().unwrap(),
                v["signatures_checked"].as_bool().unwrap(),
                v["checkpoints_verified"].as_u64().unwrap()
            ),
            expected,
            "{v}"
        );
    }
}

/// A window costs its length: it checks only its rows, from the hash stored before it, and
/// names a changed row inside it; one outside it is not its business.
#[tokio::test]
async fn a_window_of_the_chain_checks_only_its_rows_and_names_a_change_inside_it() {
    let db = history().await;
    let n = total(&db).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let whole = verify(&mut conn, None, |_| {}).await.unwrap();
    let tail = verify_window(&mut conn, None, 11, n).await.unwrap();
    assert!(tail.ok, "{tail:?}");
    assert_eq!((tail.events_checked, tail.head_position), (n - 10, n));
    assert_eq!(tail.head_hash, whole.head_hash, "the window continues the same chain");
    drop(conn);

    tamper(&db, "UPDATE events SET data = jsonb_set(data, '{amount}', '\"9999.50\"') WHERE id = (SELECT event_id FROM log WHERE position = 17)").await;
    let mut conn = db.pool.acquire().await.unwrap();
    let before = verify_window(&mut conn, None, 1, 16).await.unwrap();
    assert!(before.ok, "{before:?}");
    assert_eq!((before.events_checked, before.head_position), (16, 16));
    let after = verify_window(&mut conn, None, 18, 5).await.unwrap();
    assert!(after.ok, "rows after the change still link to the hashes stored: {after:?}");
    assert_eq!(after.events_checked, 5);
    let across = verify_window(&mut conn, None, 12, 10).await.unwrap();
    assert!(!across.ok);
    let bad = across.first_bad.unwrap();
    assert_eq!(bad.position, 17, "{}", bad.problem);
    assert_eq!(across.events_checked, 5);
}
