//! Applications paid to a person, against real PostgreSQL: submission decided by the policy in
//! force, review with maker-checker, the annual limit and the quota cap under concurrent
//! requests, refusals that record nothing, and no personal information in clear in the log.

#[path = "common/statements.rs"]
mod statements;

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use fundledger::commands::applications::{
    review, submit, submit_together, ApplicationError, PersonApplication, Review, SubmitRequest,
};
use fundledger::commands::setup::{lock_balance, register_county, register_pool, set_quota};
use fundledger::commands::Db;
use fundledger::personal::Keys;
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use policy::{Amount, DivisionCode, Ratio};
use serde_json::json;

fn code(s: &str) -> DivisionCode {
    DivisionCode::parse(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn today() -> NaiveDate {
    date("2026-11-23")
}

/// A valid resident ID number (GB 11643) for person `n`: check character by ISO 7064 MOD 11-2.
fn id_number(n: u32) -> String {
    let body = format!("370811199001{:02}{:03}", 1 + n % 28, n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

async fn ledger() -> TestDatabase {
    let db = TestDatabase::new().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    files.sort();
    for f in files {
        publish(&db.pool, &load_policy_file(&f).unwrap(), "admin").await.unwrap();
    }
    for (pool, name, counties) in [
        ("371000", "威海市", vec![("371002", "环翠区"), ("371003", "文登区")]),
        ("371500", "聊城市", vec![("371502", "东昌府区")]),
    ] {
        register_pool(&db.pool, &code(pool), name, "admin").await.unwrap();
        for (c, n) in counties {
            register_county(&db.pool, &code(c), n, &code(pool), "admin").await.unwrap();
        }
    }
    db
}

/// Liaocheng's 2024 expansion quota: 100000.00 × 0.15 = 15000.00 = 25 training subsidies of
/// 600.00.
async fn liaocheng_quota(db: &TestDatabase) {
    let liaocheng = code("371500");
    lock_balance(
        &db.pool,
        &liaocheng,
        date("2023-12-31"),
        Amount::parse("100000.00").unwrap(),
        "d",
        today(),
        "finance",
    )
    .await
    .unwrap();
    set_quota(&db.pool, &liaocheng, 2024, Ratio::parse("0.15").unwrap(), "f", "finance")
        .await
        .unwrap();
}

fn skill_upgrade(county: &str, person: u32, occupation: &str, level: u8) -> PersonApplication {
    let body = json!({
        "county": county,
        "submitted_on": "2024-08-01",
        "applicant": {"id_number": id_number(person), "name": "张小三"},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": occupation, "level": level, "number": "S0000371000124", "issued_on": "2024-03-01"}
    });
    PersonApplication::SkillUpgrade(serde_json::from_value(body).unwrap())
}

fn training(person: u32) -> PersonApplication {
    let body = json!({
        "county": "371502",
        "submitted_on": "2024-10-20",
        "applicant": {"id_number": id_number(person), "name": "李四"},
        // Insured, not on benefit: the office states the pilot, which counts against the cap.
        "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
        "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5, "assessment": "certificate",
                     "class_start_on": "2024-09-10", "hours": 40},
        "funding": "expansion_pilot"
    });
    PersonApplication::Training(serde_json::from_value(body).unwrap())
}

async fn count(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap()
}

const OCCUPATIONS: [&str; 10] = [
    "6-18-01-01",
    "6-18-01-07",
    "6-18-02-01",
    "6-18-02-04",
    "6-20-01-01",
    "6-20-03-01",
    "6-22-01-01",
    "6-29-01-01",
    "6-31-01-03",
    "6-31-03-05",
];

#[tokio::test]
async fn an_application_is_decided_by_its_policy_and_approved_by_another_person() {
    let db = ledger().await;
    let keys = Keys::generate();
    let submitted = submit(
        &db.pool,
        &keys,
        &skill_upgrade("371002", 1, OCCUPATIONS[0], 4),
        "clerk 王五",
        today(),
    )
    .await
    .unwrap();
    assert_eq!(submitted.decision.amount.value.to_string(), "1500.00");
    assert_eq!(submitted.decision.policy.document, "鲁人社发〔2024〕8号");

    let err =
        review(&db.pool, &submitted.id, &Review::Approve, "clerk 王五", today()).await.unwrap_err();
    assert_eq!(err.code(), "self_review_forbidden", "{err}");
    let before = count(&db).await;
    let approved =
        review(&db.pool, &submitted.id, &Review::Approve, "reviewer 赵六", today()).await.unwrap();
    assert_eq!(approved.status.as_str(), "approved");
    assert_eq!(count(&db).await, before + 1);
    let err = review(&db.pool, &submitted.id, &Review::Approve, "reviewer 赵六", today())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_state", "{err}");

    // Personal information never appears in clear in the log.
    let text: String =
        sqlx::query_scalar("SELECT string_agg(data::text || metadata::text, ' ') FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(!text.contains(&id_number(1)), "the ID number is in clear in the events table");
    assert!(!text.contains("张小三"), "the name is in clear in the events table");
    assert!(text.contains("张*三") && text.contains("370811********"), "masked forms are kept");
}

#[tokio::test]
async fn every_refusal_names_its_rule_and_field_and_records_nothing() {
    let db = ledger().await;
    let keys = Keys::generate();
    for occupation in &OCCUPATIONS[..3] {
        submit(&db.pool, &keys, &skill_upgrade("371002", 7, occupation, 4), "clerk", today())
            .await
            .unwrap();
    }
    let before = count(&db).await;
    let refused = |e: ApplicationError| match e {
        ApplicationError::Refused(r) => (r[0].code.as_str(), r[0].field.clone()),
        other => (other.code(), String::new()),
    };
    let cases = [
        (skill_upgrade("371002", 7, OCCUPATIONS[3], 4), ("annual_limit_reached", "submitted_on")),
        (
            skill_upgrade("371002", 7, OCCUPATIONS[0], 4),
            ("occupation_level_already_subsidized", "certificate.occupation_code"),
        ),
        (
            skill_upgrade("371002", 8, OCCUPATIONS[0], 2),
            ("no_standard_for_level", "certificate.level"),
        ),
        (skill_upgrade("379999", 8, OCCUPATIONS[0], 4), ("validation_failed", "")),
    ];
    for (app, (code, field)) in cases {
        let err = submit(&db.pool, &keys, &app, "clerk", today()).await.unwrap_err();
        let (got_code, got_field) = refused(err);
        assert_eq!(got_code, code);
        if !field.is_empty() {
            assert_eq!(got_field, field, "{code}");
        }
    }
    let err = submit(
        &db.pool,
        &keys,
        &skill_upgrade("371002", 8, OCCUPATIONS[0], 4),
        "clerk",
        date("2024-07-31"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApplicationError::FutureDate(_)), "{err}");
    assert_eq!(count(&db).await, before, "refusals record nothing");
}

/// Ten submissions for one person at once, in two counties, against a limit of three a year.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_ten_simultaneous_submissions_for_one_person_exactly_three_pass() {
    let db = ledger().await;
    let keys = Arc::new(Keys::generate());
    let barrier = Arc::new(tokio::sync::Barrier::new(OCCUPATIONS.len()));
    let tasks: Vec<_> = OCCUPATIONS
        .iter()
        .enumerate()
        .map(|(i, occupation)| {
            let (pool, keys, barrier) = (db.pool.clone(), keys.clone(), barrier.clone());
            let county = if i % 2 == 0 { "371002" } else { "371003" };
            let app = skill_upgrade(county, 42, occupation, 4);
            tokio::spawn(async move {
                barrier.wait().await;
                submit(&pool, &keys, &app, &format!("clerk {county}"), today()).await
            })
        })
        .collect();
    let (mut passed, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => passed += 1,
            Err(e) if e.code() == "annual_limit_reached" => limited += 1,
            Err(other) => panic!("unexpected outcome: {} {other}", other.code()),
        }
    }
    assert_eq!((passed, limited), (3, 7));
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ApplicationSubmitted'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 3);
}

/// Forty approvals at once against a quota that fits twenty-five.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_forty_simultaneous_approvals_exactly_the_twenty_five_that_fit_pass() {
    const APPROVALS: u32 = 40;
    let db = ledger().await;
    let keys = Keys::generate();
    liaocheng_quota(&db).await;
    let mut ids = Vec::new();
    for person in 0..APPROVALS {
        let s = submit(&db.pool, &keys, &training(100 + person), "clerk", today()).await.unwrap();
        assert_eq!(s.decision.amount.value.to_string(), "600.00");
        assert_eq!(s.decision.funding.value.as_str(), "expansion_pilot");
        ids.push(s.id);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(APPROVALS as usize));
    let tasks: Vec<_> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let (pool, barrier) = (db.pool.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                review(&pool, &id, &Review::Approve, &format!("reviewer {i}"), today()).await
            })
        })
        .collect();
    let (mut approved, mut exceeded) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => approved += 1,
            Err(e) if e.code() == "quota_exceeded" => exceeded += 1,
            Err(other) => panic!("unexpected outcome: {} {other}", other.code()),
        }
    }
    assert_eq!((approved, exceeded), (25, 15));
    let committed: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum((data->>'amount')::numeric), 0) FROM events WHERE event_type = 'ApplicationApproved'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(committed.to_string(), "15000.00", "committed equals the cap, not a fen more");
}

/// The same occupation and level for one person, submitted at once in two counties, and a
/// training application for that occupation and level at the same instant: exactly one of the
/// three stands (once per occupation and level; training and skill upgrade exclusive).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_occupation_and_level_is_subsidised_once_under_concurrent_requests() {
    let db = ledger().await;
    let keys = Arc::new(Keys::generate());
    // 4-10-01-05 (养老护理员) at level 5: skill upgrade in Weihai twice, training in Liaocheng.
    let person = 77;
    let su = |county: &str| skill_upgrade(county, person, "4-10-01-05", 5);
    let tr = {
        let body = json!({
            "county": "371502", "submitted_on": "2024-10-20",
            "applicant": {"id_number": id_number(person), "name": "孙七"},
            "eligibility": {"receiving_unemployment_benefit": true},
            "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5, "assessment": "certificate",
                         "class_start_on": "2024-09-10", "hours": 40}
        });
        PersonApplication::Training(serde_json::from_value(body).unwrap())
    };
    let apps = [su("371002"), su("371003"), tr];
    let barrier = Arc::new(tokio::sync::Barrier::new(apps.len()));
    let tasks: Vec<_> = apps
        .into_iter()
        .map(|app| {
            let (pool, keys, barrier) = (db.pool.clone(), keys.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                submit(&pool, &keys, &app, "clerk", today()).await
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(match t.await.unwrap() {
            Ok(_) => "accepted",
            Err(e) => e.code(),
        });
    }
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == "accepted").count(), 1, "{codes:?}");
    for c in codes.iter().filter(|c| **c != "accepted") {
        assert!(
            ["occupation_level_already_subsidized", "training_and_skill_upgrade_exclusive"]
                .contains(c),
            "{codes:?}"
        );
    }
}

/// Waits until every connection of `pool` is back in it: a connection is returned by a task of
/// its own after it is dropped, and a command acquiring before that opens a new one (whose
/// set-up statements would be counted as the command's).
async fn idle(pool: &sqlx::PgPool) {
    for _ in 0..100 {
        if pool.num_idle() == pool.size() as usize {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_submission_takes_four_round_trips_and_an_approval_five_on_a_warm_connection() {
    let db = ledger().await;
    let keys = Keys::generate();
    liaocheng_quota(&db).await;
    // Warm: the pool's connection is open and the published policies are cached.
    let first = submit(&db.pool, &keys, &training(1), "clerk", today()).await.unwrap();
    review(&db.pool, &first.id, &Review::Approve, "reviewer 赵六", today()).await.unwrap();

    let counter = statements::StatementCounter::install();
    idle(&db.pool).await;
    counter.clear();
    let second = submit(&db.pool, &keys, &training(2), "clerk", today()).await.unwrap();
    let statements = counter.statements();
    // BEGIN (not logged); the person's lock with the person's, the county's and the policies'
    // read; the append with the read models' changes; COMMIT.
    assert_eq!(statements.len() + 1, 4, "round trips of one submission: BEGIN + {statements:#?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM application_status")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the read model was written in the same round trip as the append");

    // An approval against the pool's quota: BEGIN (not logged); the application's stream;
    // the pool's lock with, holding it, the read point, the quota row and the policies' ids;
    // the append with the read models' changes; COMMIT. Everything after the lock is what the
    // pool's other approvals wait for.
    idle(&db.pool).await;
    counter.clear();
    review(&db.pool, &second.id, &Review::Approve, "reviewer 赵六", today()).await.unwrap();
    let statements = counter.statements();
    assert_eq!(statements.len() + 1, 5, "round trips of one approval: BEGIN + {statements:#?}");
    let committed: String = sqlx::query_scalar(
        "SELECT committed::text FROM quota_usage WHERE pool = '371500' AND year = 2024",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(committed, "1200.00", "both approvals hold quota money");
}

/// Submissions executed together are decided in order, each against its person's history
/// with the submissions before it in the same batch: the same person's second skill upgrade of
/// one occupation and level, or a training beside it, is refused as it would be one at a time.
#[tokio::test]
async fn submissions_executed_together_see_the_ones_before_them_in_the_batch() {
    let db = ledger().await;
    let keys = Keys::generate();
    let person = 78;
    let su = |county: &str| skill_upgrade(county, person, "4-10-01-05", 5);
    // Submitted after today: refused, and only it.
    let future = PersonApplication::Training(
        serde_json::from_value(json!({
            "county": "371502", "submitted_on": "2027-01-04",
            "applicant": {"id_number": id_number(79), "name": "李四"},
            "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
            "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5, "assessment": "certificate",
                         "class_start_on": "2024-09-10", "hours": 40},
            "funding": "expansion_pilot"
        }))
        .unwrap(),
    );
    let apps = [su("371002"), su("371003"), training(person), training(80), future];
    let requests: Vec<SubmitRequest> = apps
        .into_iter()
        .map(|app| SubmitRequest { app, clerk: "clerk".into(), issuer: None })
        .collect();
    let before = count(&db).await;

    let outcomes =
        submit_together(&mut Db::from(&db.pool), &keys, &requests, today()).await.unwrap();
    let codes: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            Ok(_) => "accepted",
            Err(e) => e.code(),
        })
        .collect();
    assert_eq!(codes[0], "accepted", "{codes:?}");
    for c in &codes[1..3] {
        assert!(
            ["occupation_level_already_subsidized", "training_and_skill_upgrade_exclusive"]
                .contains(c),
            "{codes:?}"
        );
    }
    assert_eq!(&codes[3..], ["accepted", "validation_failed"], "{codes:?}");
    assert_eq!(count(&db).await, before + 2);
}
