//! Job-stabilization refunds (稳岗返还) through the lifecycle against real PostgreSQL: decided
//! by the policy in force, one a year per enterprise also under concurrent submissions, and
//! paid after public notice.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use fundledger::commands::applications::{review, submit_refund, Review};
use fundledger::commands::payouts::{close_notice, issue_payouts, open_notice};
use fundledger::commands::setup::{register_county, register_pool};
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use policy::job_stabilization::JobStabilizationApplication;
use policy::DivisionCode;
use serde_json::json;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const TODAY: &str = "2024-11-20";

/// A valid unified social credit code (GB 32100) with the given 17 leading characters.
fn credit_code(body: &str) -> String {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let sum: usize = body.chars().zip(WEIGHTS).map(|(c, w)| CHARS.find(c).unwrap() * w).sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", CHARS.chars().nth(check).unwrap())
}

fn refund(code: &str, submitted_on: &str, laid_off: u32) -> JobStabilizationApplication {
    serde_json::from_value(json!({
        "county": "371002", "submitted_on": submitted_on,
        "enterprise": {"credit_code": code, "name": "威海某机械有限公司", "size": "sme", "kind": "enterprise",
                       "labour_dispatch": false},
        "premiums": {"paid_last_year": "120000.00", "months_paid_in_full": 14},
        "staff": {"insured_employees": 45, "laid_off_last_year": laid_off}
    }))
    .unwrap()
}

async fn ledger() -> TestDatabase {
    let db = TestDatabase::new().await;
    for f in ["shandong-2024-job-stabilization.toml", "state-council-holidays.toml"] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(f);
        publish(&db.pool, &load_policy_file(&file).unwrap(), "admin").await.unwrap();
    }
    let weihai = DivisionCode::parse("371000").unwrap();
    register_pool(&db.pool, &weihai, "威海市", "admin").await.unwrap();
    register_county(&db.pool, &DivisionCode::parse("371002").unwrap(), "环翠区", &weihai, "admin")
        .await
        .unwrap();
    db
}

#[tokio::test]
async fn a_refund_is_decided_noticed_and_paid_once_a_year() {
    let db = ledger().await;
    let code = credit_code("91371000MA3C1234X");
    assert_eq!(
        credit_code("91370800MA3C1234X"),
        "91370800MA3C1234XP",
        "the check character of GB 32100"
    );
    // 2 of 45 laid off (4.4% ≤ 5.5%), a small or medium enterprise: 60% of 120000.00.
    let submitted = submit_refund(&db.pool, &refund(&code, "2024-08-01", 2), "clerk", date(TODAY))
        .await
        .unwrap();
    assert_eq!(submitted.decision.amount.value.to_string(), "72000.00");
    assert_eq!(submitted.decision.funding.value.as_str(), "unemployment_insurance");

    let err = submit_refund(&db.pool, &refund(&code, "2024-09-01", 2), "clerk", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "annual_limit_reached", "{err}");
    // 3 of 45 is 6.7%, above 5.5%: not eligible.
    let other = credit_code("91371000MA3C9999Y");
    let err = submit_refund(&db.pool, &refund(&other, "2024-08-01", 3), "clerk", date(TODAY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_eligible", "{err}");

    review(&db.pool, &submitted.id, &Review::Approve, "reviewer", date(TODAY)).await.unwrap();
    let ids = vec![submitted.id.clone()];
    let notice = open_notice(&db.pool, "371002", date("2024-11-04"), &ids, "clerk", date(TODAY))
        .await
        .unwrap();
    assert_eq!(notice.lines[0].name_masked, "威海某机械有限公司", "an enterprise name is public");
    close_notice(&db.pool, &notice.id, "clerk", date("2024-11-09")).await.unwrap();
    issue_payouts(&db.pool, &ids, date("2024-11-12"), "finance", date(TODAY)).await.unwrap();
}

/// Six refund submissions for one enterprise at the same instant: exactly one stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_simultaneous_refunds_for_one_enterprise_exactly_one_is_accepted() {
    const REQUESTS: usize = 6;
    let db = ledger().await;
    let code = credit_code("91371000MA3C5555W");
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (pool, barrier, app) =
                (db.pool.clone(), barrier.clone(), refund(&code, "2024-08-01", 0));
            tokio::spawn(async move {
                barrier.wait().await;
                submit_refund(&pool, &app, "clerk", date(TODAY)).await
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!(e.code(), "annual_limit_reached", "{e}"),
        }
    }
    assert_eq!(accepted, 1);
}
