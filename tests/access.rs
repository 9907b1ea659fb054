//! Issue 12: the append-only guarantee does not depend on the client's good manners. The
//! service's connections log in as a role that owns nothing; nothing sent over them can become
//! the owner, switch the triggers off, rewrite the log, or write positions by hand.

use events::Tag;
use fundledger::postgres::testing::TestDatabase;
use fundledger::postgres::SERVICE_ROLE;
use fundledger::store::{append, sequence, Append, ExpectedVersion, NewEvent, Position};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

fn event(stream: &str) -> NewEvent {
    NewEvent {
        stream_id: stream.into(),
        event_type: "Happened".into(),
        schema_version: 1,
        data: json!({ "stream": stream }),
        metadata: Default::default(),
        tags: vec![Tag::parse(&format!("t:{stream}")).unwrap()],
        business_date: None,
    }
}

async fn append_one(conn: &mut PgConnection, stream: &str) {
    let mut tx = conn.begin().await.unwrap();
    append(
        &mut tx,
        &Append {
            events: vec![event(stream)],
            expected: vec![(stream.into(), ExpectedVersion::NoStream)],
            condition: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Runs the sequencer until the head reaches `head`: other tests share the cluster, and a
/// transaction open anywhere in it holds sequencing back for a moment (ARCHITECTURE.md).
async fn sequenced(conn: &mut PgConnection, head: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sequence(conn).await.unwrap() != Some(Position(head)) {
        assert!(std::time::Instant::now() < deadline, "the log was not sequenced to {head}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error().and_then(|e| e.code()).map(|c| c.to_string())
}

async fn current_user(conn: &mut PgConnection) -> String {
    sqlx::query_scalar("SELECT current_user::text").fetch_one(conn).await.unwrap()
}

/// Every way around the log's protections, tried on a connection of the service's own pool
/// after `RESET ROLE` (which on the old code made it the owner).
#[tokio::test]
async fn the_services_connections_cannot_become_the_owner_nor_change_the_log() {
    let db = TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    append_one(&mut conn, "s-1").await;
    sequenced(&mut conn, 1).await;

    // RESET ROLE is allowed by PostgreSQL, but it leads back to the login role: nothing more
    // (on a connection that logged in as the owner and then SET ROLE, it led to the owner).
    conn.execute("RESET ROLE").await.unwrap();
    let owner: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut db.owner_connection().await)
        .await
        .unwrap();
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert!(!superuser, "after RESET ROLE the service's connection is a superuser");

    let set_owner = format!("SET ROLE \"{owner}\"");
    let set_session = format!("SET SESSION AUTHORIZATION \"{owner}\"");
    for sql in [
        set_owner.as_str(),
        set_session.as_str(),
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "ALTER TABLE log DISABLE TRIGGER USER",
        "UPDATE events SET data = '{\"forged\": true}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE log SET hash = '\\x00'",
        "DELETE FROM log",
        "TRUNCATE log",
        "DELETE FROM event_tags",
        "INSERT INTO log (position, event_id, sealed_below) VALUES (2, 1, '1')",
        "INSERT INTO events (stream_id, stream_version, event_type, schema_version, data) \
         VALUES ('forged', 1, 'Forged', 1, '{}')",
        "INSERT INTO event_tags (tag, event_id) VALUES ('t:s-1', 1)",
        "CREATE OR REPLACE FUNCTION fundledger_refuse_change() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        "DROP TRIGGER events_append_only ON events",
        "INSERT INTO key_checks (name, key_id, check_value) VALUES ('seal', 9, sha256('x'))",
        "DELETE FROM key_checks",
    ] {
        let err = conn.execute(sql).await.expect_err(sql);
        // 42501 insufficient_privilege; "must be owner" of a table or function is 42501 too.
        assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{sql}: {err}");
        assert_eq!(current_user(&mut conn).await, SERVICE_ROLE, "after {sql}");
    }
    assert_eq!(current_user(&mut conn).await, SERVICE_ROLE, "RESET ROLE gained nothing");

    // The normal work still goes through: append (via the function) and sequence.
    append_one(&mut conn, "s-2").await;
    sequenced(&mut conn, 2).await;
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, stream_id FROM ledger ORDER BY position")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, "s-1".to_string()), (2, "s-2".to_string())]);
}

/// The functions that write the log run as their owner: a caller's temporary table named like
/// one of ours cannot stand in for it (their search_path is fixed).
#[tokio::test]
async fn a_temporary_table_cannot_capture_the_sequencers_writes() {
    let db = TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    append_one(&mut conn, "s-1").await;
    // Whether or not the role may create temporary tables, the sequencer must write `log`.
    let _ = conn.execute("CREATE TEMPORARY TABLE log (LIKE public.log INCLUDING ALL)").await;
    sequenced(&mut conn, 1).await;
    let mut owner = db.owner_connection().await;
    let positioned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.log").fetch_one(&mut owner).await.unwrap();
    assert_eq!(positioned, 1, "the position went into the real log");
}

/// The privileges the service holds are exactly the listed ones: no UPDATE, DELETE, TRUNCATE or
/// direct INSERT on the log tables; the read models it keeps, it may change.
#[tokio::test]
async fn the_service_role_holds_only_what_it_needs() {
    let db = TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let privileges: Vec<(String, bool, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT t, has_table_privilege(t, 'SELECT'), has_table_privilege(t, 'INSERT'),
                has_table_privilege(t, 'UPDATE'), has_table_privilege(t, 'DELETE'),
                has_table_privilege(t, 'TRUNCATE')
           FROM unnest(ARRAY['events', 'event_tags', 'log', 'key_checks', 'quota_usage',
                             'idempotency_keys']) AS t ORDER BY t",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let expect = |t: &str, s, i, u, d| (t.to_string(), s, i, u, d, false);
    assert_eq!(
        privileges,
        vec![
            expect("event_tags", true, false, false, false),
            expect("events", true, false, false, false),
            expect("idempotency_keys", true, true, true, false),
            expect("key_checks", true, false, false, false),
            expect("log", true, false, false, false),
            expect("quota_usage", true, true, true, true),
        ]
    );
    let owns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c WHERE pg_has_role(current_user, c.relowner, 'USAGE')
            AND c.relnamespace = 'public'::regnamespace",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(owns, 0, "the service owns nothing");
}

/// A separate service login (`FUNDLEDGER_SERVICE_URL`) that could do more than the service
/// needs is refused before the service starts: here, the owner itself.
#[tokio::test]
async fn a_service_login_that_owns_the_log_is_refused() {
    use fundledger::postgres::{service_pool, DatabaseError, PoolSettings, ServiceLogin};
    let db = TestDatabase::new().await;
    let login = ServiceLogin::Url(Box::new(db.owner.clone()));
    match service_pool(&db.owner, &login, &PoolSettings::default()).await {
        Err(DatabaseError::ServiceNotLimited(user)) => {
            let message = DatabaseError::ServiceNotLimited(user).to_string();
            assert!(message.contains("must log in as a role that owns nothing"), "{message}");
        }
        other => panic!("the owner must not be accepted as the service's login: {other:?}"),
    }
}
