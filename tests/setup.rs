//! Setting up a pool against real PostgreSQL: the happy path, every refusal recording
//! nothing, and the balance locked once under concurrent requests.

use std::path::Path;

use chrono::NaiveDate;
use fundledger::commands::setup::{
    lock_balance, register_county, register_pool, set_quota, SetupError,
};
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use policy::{Amount, DivisionCode, Ratio};

fn code(s: &str) -> DivisionCode {
    DivisionCode::parse(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn amount(s: &str) -> Amount {
    Amount::parse(s).unwrap()
}

const TODAY: &str = "2026-11-23";

async fn count(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap()
}

async fn with_quota_policy() -> TestDatabase {
    let db = TestDatabase::new().await;
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/shandong-2024-expansion-quota.toml");
    publish(&db.pool, &load_policy_file(&file).unwrap(), "admin").await.unwrap();
    db
}

#[tokio::test]
async fn a_pool_is_set_up_and_its_quota_is_fifteen_percent_rounded_down() {
    let db = with_quota_policy().await;
    let jining = code("370800");
    register_pool(&db.pool, &jining, "济宁市", "admin").await.unwrap();
    register_county(&db.pool, &code("370811"), "任城区", &jining, "admin").await.unwrap();
    lock_balance(
        &db.pool,
        &jining,
        date("2023-12-31"),
        amount("123456789.99"),
        "济财社〔2024〕1号",
        date(TODAY),
        "finance",
    )
    .await
    .unwrap();
    let cap = set_quota(
        &db.pool,
        &jining,
        2024,
        Ratio::parse("0.15").unwrap(),
        "鲁人社备〔2024〕3号",
        "finance",
    )
    .await
    .unwrap();
    // 123456789.99 × 0.15 = 18518518.4985, rounded down to the fen.
    assert_eq!(cap.value().to_string(), "18518518.49");
    assert_eq!(count(&db).await, 5);
}

#[tokio::test]
async fn every_refusal_names_its_rule_and_records_nothing() {
    let db = with_quota_policy().await;
    let jining = code("370800");
    let ratio = |s: &str| Ratio::parse(s).unwrap();

    let err =
        register_county(&db.pool, &code("370811"), "任城区", &jining, "admin").await.unwrap_err();
    assert_eq!(err.code(), "pool_not_found", "{err}");
    register_pool(&db.pool, &jining, "济宁市", "admin").await.unwrap();
    let err = register_pool(&db.pool, &jining, "济宁", "admin").await.unwrap_err();
    assert_eq!(err.code(), "pool_already_registered");
    let err = register_pool(&db.pool, &code("371000"), "  ", "admin").await.unwrap_err();
    assert!(matches!(err, SetupError::Invalid { field: "name", .. }), "{err}");

    let err = set_quota(&db.pool, &jining, 2024, ratio("0.15"), "f", "finance").await.unwrap_err();
    assert_eq!(err.code(), "balance_not_locked", "{err}");
    let err = lock_balance(
        &db.pool,
        &jining,
        date("2027-01-01"),
        amount("1.00"),
        "d",
        date(TODAY),
        "finance",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SetupError::Invalid { field: "as_of", .. }), "{err}");

    let before = count(&db).await;
    lock_balance(
        &db.pool,
        &jining,
        date("2023-12-31"),
        amount("100000000.00"),
        "d",
        date(TODAY),
        "finance",
    )
    .await
    .unwrap();
    let err = lock_balance(
        &db.pool,
        &jining,
        date("2023-12-31"),
        amount("1.00"),
        "d",
        date(TODAY),
        "finance",
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "balance_already_locked");

    let err = set_quota(&db.pool, &jining, 2024, ratio("0.16"), "f", "finance").await.unwrap_err();
    assert_eq!(err.code(), "ratio_above_ceiling", "{err}");
    assert!(err.to_string().contains("shandong-2024-expansion-quota"), "{err}");
    let err = set_quota(&db.pool, &jining, 2030, ratio("0.10"), "f", "finance").await.unwrap_err();
    assert_eq!(err.code(), "no_policy_in_force", "{err}");
    set_quota(&db.pool, &jining, 2024, ratio("0.15"), "f", "finance").await.unwrap();
    let err = set_quota(&db.pool, &jining, 2024, ratio("0.10"), "f", "finance").await.unwrap_err();
    assert_eq!(err.code(), "quota_already_set");
    assert_eq!(count(&db).await, before + 2, "only the balance and the quota were recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_locks_of_a_balance_exactly_one_is_recorded() {
    const REQUESTS: usize = 16;
    let db = with_quota_policy().await;
    let jining = code("370800");
    register_pool(&db.pool, &jining, "济宁市", "admin").await.unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (pool, barrier) = (db.pool.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let amount = amount(&format!("{}.00", 1_000_000 + i));
                lock_balance(
                    &pool,
                    &jining,
                    date("2023-12-31"),
                    amount,
                    "d",
                    date(TODAY),
                    "finance",
                )
                .await
                .map(|()| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(i) => winners.push(i),
            Err(SetupError::BalanceAlreadyLocked(_)) => {}
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let recorded: String = sqlx::query_scalar(
        "SELECT data->>'amount' FROM events WHERE event_type = 'HistoricalBalanceLocked'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(recorded, format!("{}.00", 1_000_000 + winners[0]), "the winner's amount, once");
}
