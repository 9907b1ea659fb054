//! Statement and lock timeouts of the service's connections: a command blocked behind a lock
//! held elsewhere ends in bounded time, with a clear problem (503 `database_timeout`, retry),
//! and records nothing.

use std::time::{Duration, Instant};

use fundledger::commands::setup::{register_pool, set_notice_period};
use fundledger::http::problem::Problem;
use fundledger::postgres::testing::TestDatabase;
use fundledger::postgres::PoolSettings;
use policy::DivisionCode;
use sqlx::{ConnectOptions, Connection, Executor};

#[tokio::test]
async fn a_command_blocked_on_a_lock_ends_in_bounded_time_with_a_clear_problem() {
    let lock_timeout = Duration::from_millis(800);
    let db = TestDatabase::with_pool(PoolSettings {
        max_connections: 4,
        lock_timeout,
        ..PoolSettings::default()
    })
    .await;
    let pool = DivisionCode::parse("371500").unwrap();
    register_pool(&db.pool, &pool, "聊城市", "admin").await.unwrap();
    let events_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap();

    // Someone holds the log's table lock and does not let go (an operator's session, a stuck
    // maintenance job).
    let mut holder = db.owner.connect().await.unwrap();
    let mut held = holder.begin().await.unwrap();
    held.execute("LOCK TABLE events IN EXCLUSIVE MODE").await.unwrap();

    let started = Instant::now();
    let outcome = tokio::time::timeout(
        lock_timeout * 6,
        set_notice_period(&db.pool, &pool, 7, "聊人社字〔2024〕3号", "admin"),
    )
    .await
    .unwrap_or_else(|_| panic!("the command still waited after {:?}", lock_timeout * 6));
    let waited = started.elapsed();
    let err = outcome.expect_err("a command cannot append while the log is locked");
    assert!(
        waited < lock_timeout * 6,
        "the command waited {waited:?}, far past the lock timeout of {lock_timeout:?}"
    );
    let problem = Problem::from(err);
    assert_eq!((problem.status, problem.code.as_str()), (503, "database_timeout"));
    assert_eq!(problem.retry_after, Some(2));
    assert!(problem.detail.contains("nothing was recorded"), "{}", problem.detail);

    held.rollback().await.unwrap();
    let events_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(events_after, events_before, "the timed-out command recorded nothing");
    // Once the lock is gone, the same command goes through.
    set_notice_period(&db.pool, &pool, 7, "聊人社字〔2024〕3号", "admin").await.unwrap();
}
