//! From approval to settled payout against real PostgreSQL: no payout before the public notice
//! has closed, nothing paid twice under concurrent requests, settlement once.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use fundledger::commands::applications::{review, submit, withdraw, PersonApplication, Review};
use fundledger::commands::payouts::{
    close_notice, file_objection, issue_payouts, open_notice, record_recovery, reissue_payout,
    resolve_objection, settle, BankAccount, PayoutError, Settlement,
};
use fundledger::commands::setup::{
    lock_balance, register_county, register_pool, set_notice_period, set_quota, SetupError,
};
use fundledger::personal::Keys;
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use policy::{Amount, DivisionCode, Ratio};
use serde_json::json;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn id_number(n: u32) -> String {
    let body = format!("371502198805{:02}{:03}", 1 + n % 28, n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

const TODAY: &str = "2024-11-20";

/// Liaocheng with a 2024 quota of 15000.00 and `n` approved training applications.
/// The ledger's personal-data keys: one key file for every command of a test (a person's data
/// key is sealed under them at submission and opened again by a reissue to that person).
fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(Keys::generate)
}

async fn approved(n: u32) -> (TestDatabase, Vec<String>) {
    let db = TestDatabase::new().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for f in [
        "liaocheng-2024-training.toml",
        "shandong-2024-expansion-quota.toml",
        "state-council-holidays.toml",
    ] {
        publish(&db.pool, &load_policy_file(&dir.join(f)).unwrap(), "admin").await.unwrap();
    }
    let pool = DivisionCode::parse("371500").unwrap();
    register_pool(&db.pool, &pool, "聊城市", "admin").await.unwrap();
    register_county(&db.pool, &DivisionCode::parse("371502").unwrap(), "东昌府区", &pool, "admin")
        .await
        .unwrap();
    lock_balance(
        &db.pool,
        &pool,
        date("2023-12-31"),
        Amount::parse("100000.00").unwrap(),
        "d",
        date(TODAY),
        "finance",
    )
    .await
    .unwrap();
    set_quota(&db.pool, &pool, 2024, Ratio::parse("0.15").unwrap(), "f", "finance").await.unwrap();
    let keys = keys();
    let mut ids = Vec::new();
    for person in 0..n {
        let body = json!({
            "county": "371502", "submitted_on": "2024-10-20",
            "applicant": {"id_number": id_number(person), "name": "王小五"},
            "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
            "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                         "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 40},
            "funding": "expansion_pilot"
        });
        let app = PersonApplication::Training(serde_json::from_value(body).unwrap());
        let s = submit(&db.pool, keys, &app, "clerk", date(TODAY)).await.unwrap();
        review(&db.pool, &s.id, &Review::Approve, "reviewer", date(TODAY)).await.unwrap();
        ids.push(s.id);
    }
    (db, ids)
}

async fn quota_paid(db: &TestDatabase) -> String {
    let paid: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum((data->>'amount')::numeric), 0) FROM events WHERE event_type = 'PayoutIssued'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    paid.to_string()
}

#[tokio::test]
async fn an_approved_application_is_noticed_cleared_paid_and_settled() {
    let (db, ids) = approved(2).await;
    let err = issue_payouts(&db.pool, &ids, date("2024-11-04"), "finance", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_cleared", "{err}");

    // Monday 2024-11-04, five working days: until Friday 2024-11-08.
    let notice = open_notice(&db.pool, "371502", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap();
    assert_eq!(notice.ends_on, date("2024-11-08"));
    assert_eq!(notice.lines[0].name_masked, "王*五");
    assert!(notice.lines[0].id_number_masked.starts_with("371502********"));
    let err = open_notice(&db.pool, "371502", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_approved", "already on notice: {err}");

    let err = close_notice(&db.pool, &notice.id, "clerk", date("2024-11-08")).await.unwrap_err();
    assert_eq!(err.code(), "notice_period_not_ended", "{err}");
    let err = issue_payouts(&db.pool, &ids, date("2024-11-08"), "finance", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_cleared", "no payout before the notice has closed: {err}");

    let cleared = close_notice(&db.pool, &notice.id, "clerk", date("2024-11-09")).await.unwrap();
    assert_eq!(cleared, ids);
    let err = close_notice(&db.pool, &notice.id, "clerk", date("2024-11-10")).await.unwrap_err();
    assert_eq!(err.code(), "notice_already_closed");

    let payouts =
        issue_payouts(&db.pool, &ids, date("2024-11-12"), "finance", date(TODAY)).await.unwrap();
    assert_eq!(payouts.len(), 2);
    assert_eq!(quota_paid(&db).await, "1200.00");
    settle(
        &db.pool,
        &payouts[0],
        &Settlement::Settled { bank_reference: "B20241113001".into() },
        "finance",
        date(TODAY),
    )
    .await
    .unwrap();
    let err = settle(
        &db.pool,
        &payouts[0],
        &Settlement::Failed { reason: "closed".into() },
        "finance",
        date(TODAY),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "payout_already_settled", "{err}");
    settle(
        &db.pool,
        &payouts[1],
        &Settlement::Failed { reason: "账户已销户".into() },
        "finance",
        date(TODAY),
    )
    .await
    .unwrap();

    let before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap();
    let err = issue_payouts(&db.pool, &ids[..1], date("2024-11-12"), "finance", date(TODAY))
        .await
        .unwrap_err();
    assert!(matches!(err, PayoutError::AlreadyPaid { .. }), "{err}");
    let after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(before, after, "a refusal records nothing");
}

/// Eight payout requests for one cleared application at the same instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_payouts_for_one_application_exactly_one_is_recorded() {
    const REQUESTS: usize = 8;
    let (db, ids) = approved(1).await;
    let notice = open_notice(&db.pool, "371502", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap();
    close_notice(&db.pool, &notice.id, "clerk", date("2024-11-09")).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (pool, barrier, ids) = (db.pool.clone(), barrier.clone(), ids.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                issue_payouts(&pool, &ids, date("2024-11-12"), "finance", date(TODAY)).await
            })
        })
        .collect();
    let (mut paid, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => paid += 1,
            Err(PayoutError::AlreadyPaid { .. }) => refused += 1,
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!((paid, refused), (1, REQUESTS - 1));
    assert_eq!(quota_paid(&db).await, "600.00", "paid once");
}

#[tokio::test]
async fn of_concurrent_reissues_of_one_failed_payout_exactly_one_is_recorded() {
    const REQUESTS: usize = 8;
    let (db, ids) = approved(1).await;
    let notice = open_notice(&db.pool, "371502", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap();
    close_notice(&db.pool, &notice.id, "clerk", date("2024-11-09")).await.unwrap();
    let failed = issue_payouts(&db.pool, &ids, date("2024-11-12"), "finance", date(TODAY))
        .await
        .unwrap()
        .remove(0);
    let failure = Settlement::Failed { reason: "账户已销户".into() };
    settle(&db.pool, &failed, &failure, "finance", date(TODAY)).await.unwrap();
    let keys = Arc::new(keys().clone());
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (pool, barrier, keys, failed) =
                (db.pool.clone(), barrier.clone(), keys.clone(), failed.clone());
            tokio::spawn(async move {
                let account =
                    BankAccount { bank: "农行".into(), number: format!("62284800{i:08}") };
                barrier.wait().await;
                reissue_payout(&pool, &keys, &failed, &account, date(TODAY), "finance", date(TODAY))
                    .await
            })
        })
        .collect();
    let (mut reissued, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => reissued += 1,
            Err(PayoutError::NotReissuable { .. }) => refused += 1,
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!((reissued, refused), (1, REQUESTS - 1));
    let payouts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PayoutIssued'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(payouts, 2, "the first payout and one reissue");
    assert_eq!(quota(&db).await.1, "600.00", "the quota counts the money once");
}

/// The pool's 2024 quota as a fold of the whole log: (committed, paid, recovered, remaining).
async fn quota(db: &TestDatabase) -> (String, String, String, String) {
    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT event_type, data FROM events ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let mut pools = projections::pools::Pools::default();
    for (t, d) in &rows {
        pools.apply(t, d).unwrap();
    }
    let q = pools.quota("371500", 2024).unwrap();
    q.check();
    (
        q.committed.to_string(),
        q.paid.to_string(),
        q.recovered.to_string(),
        q.remaining().to_string(),
    )
}

#[tokio::test]
async fn an_upheld_objection_rejects_the_application_and_frees_its_quota() {
    let (db, ids) = approved(2).await;
    assert_eq!(quota(&db).await.0, "1200.00");
    let notice = open_notice(&db.pool, "371502", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap();
    let upheld = file_objection(
        &db.pool,
        &notice.id,
        &ids[0],
        "申请人并未参加培训",
        "citizen",
        date("2024-11-05"),
    )
    .await
    .unwrap();
    let dismissed =
        file_objection(&db.pool, &notice.id, &ids[1], "金额有误", "citizen", date("2024-11-06"))
            .await
            .unwrap();
    let err = file_objection(&db.pool, &notice.id, &ids[1], "again", "citizen", date("2024-11-09"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "objection_period_ended", "{err}");

    let cleared = close_notice(&db.pool, &notice.id, "clerk", date("2024-11-09")).await.unwrap();
    assert!(cleared.is_empty(), "open objections hold their applications");

    let status = resolve_objection(
        &db.pool,
        &upheld,
        true,
        "查实未参加培训",
        "reviewer",
        date("2024-11-11"),
    )
    .await
    .unwrap();
    assert_eq!(status.as_str(), "rejected");
    let status = resolve_objection(
        &db.pool,
        &dismissed,
        false,
        "异议不成立",
        "reviewer",
        date("2024-11-11"),
    )
    .await
    .unwrap();
    assert_eq!(status.as_str(), "cleared");
    let err = resolve_objection(&db.pool, &upheld, false, "x", "reviewer", date("2024-11-11"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "objection_already_resolved");

    let err = issue_payouts(&db.pool, &ids[..1], date("2024-11-12"), "finance", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_cleared", "{err}");
    issue_payouts(&db.pool, &ids[1..], date("2024-11-12"), "finance", date(TODAY)).await.unwrap();
    assert_eq!(quota(&db).await, ("0.00".into(), "600.00".into(), "0".into(), "14400.00".into()));
}

#[tokio::test]
async fn a_withdrawal_releases_its_commitment_and_a_recovery_frees_quota() {
    let (db, ids) = approved(3).await;
    withdraw(&db.pool, &ids[2], "申请人放弃", "clerk", date(TODAY)).await.unwrap();
    assert_eq!(quota(&db).await.0, "1200.00");
    let err = withdraw(&db.pool, &ids[2], "again", "clerk", date(TODAY)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_state");

    let paid = &ids[..2];
    let notice = open_notice(&db.pool, "371502", date("2024-11-04"), paid, "clerk", date(TODAY))
        .await
        .unwrap();
    close_notice(&db.pool, &notice.id, "clerk", date("2024-11-09")).await.unwrap();
    let payouts =
        issue_payouts(&db.pool, paid, date("2024-11-12"), "finance", date(TODAY)).await.unwrap();
    settle(
        &db.pool,
        &payouts[0],
        &Settlement::Settled { bank_reference: "B1".into() },
        "finance",
        date(TODAY),
    )
    .await
    .unwrap();

    let money = |s: &str| policy::Money::parse(s).unwrap();
    let err = record_recovery(&db.pool, &ids[1], money("600.00"), "骗取", "finance", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_recoverable", "an unsettled payout is not recovered: {err}");
    let err = record_recovery(&db.pool, &ids[0], money("600.01"), "骗取", "finance", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "validation_failed", "{err}");
    record_recovery(&db.pool, &ids[0], money("200.00"), "重复领取", "finance", date(TODAY))
        .await
        .unwrap();
    record_recovery(&db.pool, &ids[0], money("400.00"), "重复领取", "finance", date(TODAY))
        .await
        .unwrap();
    let err = record_recovery(&db.pool, &ids[0], money("0.01"), "x", "finance", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_recoverable", "fully recovered: {err}");
    assert_eq!(
        quota(&db).await,
        ("0.00".into(), "1200.00".into(), "600.00".into(), "14400.00".into())
    );
}

#[tokio::test]
async fn a_pool_sets_the_length_of_its_notices() {
    let (db, ids) = approved(1).await;
    let pool = DivisionCode::parse("371500").unwrap();
    let err =
        set_notice_period(&db.pool, &pool, 0, "聊人社字〔2024〕99号", "admin").await.unwrap_err();
    assert!(matches!(err, SetupError::Invalid { field: "working_days", .. }), "{err}");
    set_notice_period(&db.pool, &pool, 3, "聊人社字〔2024〕99号", "admin").await.unwrap();
    // Monday 2024-11-04, three working days: until Wednesday 2024-11-06.
    let notice = open_notice(&db.pool, "371502", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap();
    assert_eq!(notice.ends_on, date("2024-11-06"));
    let cleared = close_notice(&db.pool, &notice.id, "clerk", date("2024-11-07")).await.unwrap();
    assert_eq!(cleared, ids);
}
