//! Upgrading a ledger that already holds events: a new migration that adds to the read models
//! (here 0009, which added the application list's columns) is followed by a rebuild from the
//! log, through the same definition the commands use, with no manual step.

use std::borrow::Cow;

use events::Metadata;
use fundledger::postgres::testing::admin_options;
use fundledger::store::{append, Append, NewEvent};
use serde_json::{json, Value};
use sqlx::{ConnectOptions, Connection, Executor};

fn event(stream: &str, event_type: &str, data: Value) -> NewEvent {
    NewEvent {
        stream_id: stream.into(),
        event_type: event_type.into(),
        schema_version: 1,
        data,
        metadata: Metadata::default(),
        tags: vec![],
        business_date: None,
    }
}

#[tokio::test]
async fn a_migration_that_adds_to_the_read_models_fills_them_from_the_log() {
    let admin = admin_options();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await.unwrap();
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
    drop(conn);
    let owner = admin.clone().database(&name);

    // The previous release: every migration before 0009.
    let previous = sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            fundledger::postgres::MIGRATOR.iter().filter(|m| m.version < 9).cloned().collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let mut conn = owner.connect().await.unwrap();
    previous.run(&mut conn).await.unwrap();

    // A ledger that holds events (written here without its read models, as a stand-in for
    // the previous release's rows, which the rebuild replaces anyway).
    let submitted = json!({"application": "a1", "program": "vocational_training", "county": "371502",
        "pool": "371500", "submitted_on": "2024-10-20", "year": 2024, "submitted_by": "c",
        "subject": "6-18-02-04", "level": 5, "details": {},
        "person": {"key": "k1", "id_number_sealed": "s", "name_sealed": "s",
                   "id_number_masked": "371502********1234", "name_masked": "周*"},
        "decision": {"policy": "p", "document": "d", "amount": "600.00", "amount_rule": "r",
                     "funding": "expansion_pilot", "funding_rule": "r",
                     "slot": {"kind": "base", "year": 2024, "number": 1, "rule": "r"}}});
    let log = vec![
        event("pool-371500", "PoolRegistered", json!({"pool": "371500", "name": "聊城市"})),
        event(
            "pool-371500",
            "ExpansionQuotaSet",
            json!({"pool": "371500", "year": 2024, "ratio": "0.15", "cap": "15000000.00",
                   "filing_document": "f", "policy": "p"}),
        ),
        event("application-a1", "ApplicationSubmitted", submitted),
        event(
            "application-a1",
            "ApplicationApproved",
            json!({"application": "a1", "pool": "371500", "year": 2024, "amount": "600.00",
                   "funding": "expansion_pilot", "counts_against_quota": true, "reviewer": "r",
                   "approved_on": "2024-10-21"}),
        ),
    ];
    let mut tx = conn.begin().await.unwrap();
    append(&mut tx, &Append { events: log.clone(), ..Append::default() }).await.unwrap();
    tx.commit().await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM application_status")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(before, 0, "the stand-in for the previous release wrote no rows");
    drop(conn);

    // The upgrade: the service's own migrate.
    fundledger::postgres::migrate(&owner).await.unwrap();

    let mut conn = owner.connect().await.unwrap();
    let mut folded = projections::ReadModels::default();
    for e in &log {
        folded.apply(&e.event_type, &e.data).unwrap();
    }
    let rows = fundledger::read_models::all_application_statuses(&mut conn).await.unwrap();
    assert_eq!(rows, folded.applications.status_rows());
    assert_eq!(rows[0].slot, Some(json!({"kind": "base", "year": 2024, "number": 1})));
    let quotas = fundledger::read_models::all_quotas(&mut conn).await.unwrap();
    assert_eq!(quotas, vec![folded.pools.quota_row("371500", 2024)]);
    assert_eq!(quotas[0].committed.to_string(), "600.00");
    drop(conn);

    let mut conn = admin.connect().await.unwrap();
    conn.execute(format!("DROP DATABASE \"{name}\" WITH (FORCE)").as_str()).await.unwrap();
}
