//! Rebuild equals live: a random history of commands (every path of the lifecycle, refusals
//! included) runs against real PostgreSQL; then the pure fold of the whole log must give
//! exactly the quota rows the commands kept inline, row for row.
//!
//! The history is random but reproducible: set FUNDLEDGER_TEST_SEED to replay a failing one.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use fundledger::commands::applications::{
    review, submit, submit_refund, withdraw, PersonApplication, Review,
};
use fundledger::commands::payouts::{
    close_notice, file_objection, issue_payouts, open_notice, record_recovery, resolve_objection,
    settle, Settlement,
};
use fundledger::commands::setup::{lock_balance, register_county, register_pool, set_quota};
use fundledger::personal::Keys;
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use fundledger::read_models::all_quotas;
use policy::{Amount, DivisionCode, Money, Ratio};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn id_number(n: u32) -> String {
    let body = format!("371502197703{:02}{:03}", 1 + n % 28, n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

const TODAY: &str = "2024-11-20";
/// Urgent-list occupations of Liaocheng's catalog (培训) that Weihai also certifies (技能提升).
const OCCUPATIONS: [&str; 5] =
    ["4-10-01-05", "4-10-01-06", "6-18-02-04", "4-01-02-03", "4-03-02-05"];
const COMMANDS: usize = 600;
const PERSONS: u32 = 40;

fn application(rng: &mut StdRng) -> PersonApplication {
    let person = rng.gen_range(0..PERSONS);
    let occupation = OCCUPATIONS[rng.gen_range(0..OCCUPATIONS.len())];
    let level = rng.gen_range(3..=5);
    if rng.gen_bool(0.7) {
        let body = json!({
            "county": "371502", "submitted_on": "2024-10-20",
            "applicant": {"id_number": id_number(person), "name": "周八"},
            "eligibility": {"receiving_unemployment_benefit": rng.gen_bool(0.8)},
            "training": {"catalog": "urgent", "occupation_code": occupation, "level": level,
                         "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 56}
        });
        PersonApplication::Training(serde_json::from_value(body).unwrap())
    } else {
        let body = json!({
            "county": "371002", "submitted_on": "2024-10-20",
            "applicant": {"id_number": id_number(person), "name": "周八"},
            "eligibility": {"insured_months": 30, "receiving_unemployment_benefit": false},
            "certificate": {"occupation_code": occupation, "level": level, "number": "S9", "issued_on": "2024-06-01"}
        });
        PersonApplication::SkillUpgrade(serde_json::from_value(body).unwrap())
    }
}

/// A refund for one of a few enterprises (one a year each, so most repeats are refused).
fn refund(rng: &mut StdRng) -> policy::job_stabilization::JobStabilizationApplication {
    const CODES: [&str; 4] =
        ["91371000MA3C1234XT", "91371000MA3C1235XU", "91371000MA3C1236XW", "91371000MA3C1237XX"];
    let code = CODES[rng.gen_range(0..CODES.len())];
    serde_json::from_value(json!({
        "county": "371002", "submitted_on": "2024-08-01",
        "enterprise": {"credit_code": code, "name": "威海某企业", "size": if rng.gen_bool(0.5) { "sme" } else { "large" },
                       "kind": "enterprise", "labour_dispatch": false},
        "premiums": {"paid_last_year": "88888.88", "months_paid_in_full": 13},
        "staff": {"insured_employees": 40, "laid_off_last_year": rng.gen_range(0..4)}
    }))
    .unwrap()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.gen_range(0..items.len())])
}

#[tokio::test]
async fn the_fold_of_the_log_equals_the_quota_rows_kept_inline() {
    let seed: u64 = std::env::var("FUNDLEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_123);
    eprintln!("FUNDLEDGER_TEST_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let db = TestDatabase::new().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for f in [
        "liaocheng-2024-training.toml",
        "shandong-2024-expansion-quota.toml",
        "shandong-2024-skill-upgrade.toml",
        "shandong-2024-job-stabilization.toml",
    ] {
        publish(&db.pool, &load_policy_file(&dir.join(f)).unwrap(), "admin").await.unwrap();
    }
    let (liaocheng, weihai) =
        (DivisionCode::parse("371500").unwrap(), DivisionCode::parse("371000").unwrap());
    register_pool(&db.pool, &liaocheng, "聊城市", "admin").await.unwrap();
    register_pool(&db.pool, &weihai, "威海市", "admin").await.unwrap();
    register_county(
        &db.pool,
        &DivisionCode::parse("371502").unwrap(),
        "东昌府区",
        &liaocheng,
        "admin",
    )
    .await
    .unwrap();
    register_county(&db.pool, &DivisionCode::parse("371002").unwrap(), "环翠区", &weihai, "admin")
        .await
        .unwrap();
    // A cap of 6000.00: small enough that approvals meet quota_exceeded.
    lock_balance(
        &db.pool,
        &liaocheng,
        date("2023-12-31"),
        Amount::parse("40000.00").unwrap(),
        "d",
        date(TODAY),
        "finance",
    )
    .await
    .unwrap();
    set_quota(&db.pool, &liaocheng, 2024, Ratio::parse("0.15").unwrap(), "f", "finance")
        .await
        .unwrap();

    let keys = Keys::generate();
    let today = date(TODAY);
    // What the history believes each application's state is, to aim most commands at
    // applications they fit; one in five is aimed at random, to meet refusals too.
    let mut state: BTreeMap<String, (&str, String)> = BTreeMap::new();
    let (mut notices, mut objections, mut payouts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ok, mut refused) = (0, 0);
    fn aim(
        rng: &mut StdRng,
        state: &BTreeMap<String, (&str, String)>,
        wanted: &str,
    ) -> Option<String> {
        let fitting: Vec<&String> =
            state.iter().filter(|(_, (s, _))| *s == wanted).map(|(id, _)| id).collect();
        let all: Vec<&String> = state.keys().collect();
        let from = if rng.gen_bool(0.8) && !fitting.is_empty() { fitting } else { all };
        pick(rng, &from).map(|s| s.to_string())
    }
    for _ in 0..COMMANDS {
        let outcome: Result<(), String> = match rng.gen_range(0..100) {
            0..=19 => submit(&db.pool, &keys, &application(&mut rng), "clerk", today)
                .await
                .map(|s| {
                    state.insert(s.id, ("submitted", s.pool.to_string()));
                })
                .map_err(|e| e.code().to_string()),
            20..=24 => submit_refund(&db.pool, &refund(&mut rng), "clerk", today)
                .await
                .map(|s| {
                    state.insert(s.id, ("submitted", s.pool.to_string()));
                })
                .map_err(|e| e.code().to_string()),
            25..=44 => match aim(&mut rng, &state, "submitted") {
                Some(id) => {
                    let approve = rng.gen_bool(0.85);
                    let r = if approve {
                        Review::Approve
                    } else {
                        Review::Reject { reasons: vec!["材料不全".into()] }
                    };
                    review(&db.pool, &id, &r, "reviewer", today)
                        .await
                        .map(|_| {
                            state.get_mut(&id).unwrap().0 =
                                if approve { "approved" } else { "rejected" }
                        })
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            45..=49 => match aim(&mut rng, &state, "approved") {
                Some(id) => withdraw(&db.pool, &id, "申请人放弃", "clerk", today)
                    .await
                    .map(|_| state.get_mut(&id).unwrap().0 = "withdrawn")
                    .map_err(|e| e.code().to_string()),
                None => Ok(()),
            },
            50..=59 => {
                let pool = if rng.gen_bool(0.7) { "371500" } else { "371000" };
                let county = if pool == "371500" { "371502" } else { "371002" };
                let mut some: Vec<String> = state
                    .iter()
                    .filter(|(_, (s, p))| *s == "approved" && p == pool)
                    .map(|(id, _)| id.clone())
                    .take(rng.gen_range(1..=4))
                    .collect();
                if rng.gen_bool(0.1) {
                    if let Some(other) = aim(&mut rng, &state, "submitted") {
                        some.push(other);
                    }
                }
                some.dedup();
                if some.is_empty() {
                    Ok(())
                } else {
                    open_notice(&db.pool, county, date("2024-11-04"), &some, "clerk", today)
                        .await
                        .map(|n| {
                            for id in &some {
                                state.get_mut(id).unwrap().0 = "in_notice";
                            }
                            notices.push((n.id, some.clone()));
                        })
                        .map_err(|e| e.code().to_string())
                }
            }
            60..=64 => match pick(&mut rng, &notices).cloned() {
                Some((notice, ids)) => {
                    let id = ids[rng.gen_range(0..ids.len())].clone();
                    file_objection(
                        &db.pool,
                        &notice,
                        &id,
                        "举报不实",
                        "citizen",
                        date("2024-11-05"),
                    )
                    .await
                    .map(|o| objections.push((o, id)))
                    .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            65..=69 => match pick(&mut rng, &objections).cloned() {
                Some((o, id)) => {
                    resolve_objection(&db.pool, &o, rng.gen_bool(0.5), "已核查", "reviewer", today)
                        .await
                        .map(|status| {
                            if status.as_str() == "rejected" || status.as_str() == "cleared" {
                                state.get_mut(&id).unwrap().0 = status.as_str();
                            }
                        })
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            70..=76 => match pick(&mut rng, &notices).cloned() {
                Some((notice, _)) => close_notice(&db.pool, &notice, "clerk", date("2024-11-09"))
                    .await
                    .map(|cleared| {
                        for id in cleared {
                            state.get_mut(&id).unwrap().0 = "cleared";
                        }
                    })
                    .map_err(|e| e.code().to_string()),
                None => Ok(()),
            },
            77..=86 => match aim(&mut rng, &state, "cleared") {
                Some(id) => issue_payouts(
                    &db.pool,
                    std::slice::from_ref(&id),
                    date("2024-11-12"),
                    "finance",
                    today,
                )
                .await
                .map(|p| {
                    state.get_mut(&id).unwrap().0 = "payout_issued";
                    payouts.extend(p.into_iter().map(|p| (p, id.clone())));
                })
                .map_err(|e| e.code().to_string()),
                None => Ok(()),
            },
            87..=93 => match pick(&mut rng, &payouts).cloned() {
                Some((p, id)) => {
                    let s = if rng.gen_bool(0.8) {
                        Settlement::Settled { bank_reference: "B".into() }
                    } else {
                        Settlement::Failed { reason: "账户已销户".into() }
                    };
                    let next = if matches!(s, Settlement::Settled { .. }) {
                        "settled"
                    } else {
                        "payout_failed"
                    };
                    settle(&db.pool, &p, &s, "finance", today)
                        .await
                        .map(|()| state.get_mut(&id).unwrap().0 = next)
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            _ => match aim(&mut rng, &state, "settled") {
                Some(id) => {
                    let amount =
                        Money::parse(if rng.gen_bool(0.5) { "100.00" } else { "600.00" }).unwrap();
                    record_recovery(&db.pool, &id, amount, "追回", "finance", today)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
        };
        match outcome {
            Ok(()) => ok += 1,
            Err(code) => {
                assert_ne!(code, "internal", "a command failed inside (seed {seed})");
                refused += 1;
            }
        }
    }
    eprintln!("{ok} commands succeeded, {refused} were refused");
    assert!(
        ok > COMMANDS / 3 && refused > 0,
        "the history exercises both paths: {ok} ok, {refused} refused"
    );

    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT event_type, data FROM events ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for (t, _) in &rows {
        *seen.entry(t.as_str()).or_default() += 1;
    }
    eprintln!("{seen:?}");
    for t in [
        "ApplicationSubmitted",
        "ApplicationApproved",
        "ApplicationRejected",
        "ApplicationWithdrawn",
        "NoticeOpened",
        "ObjectionFiled",
        "ObjectionResolved",
        "NoticeClosed",
        "PayoutIssued",
        "PayoutSettled",
        "RecoveryRecorded",
    ] {
        assert!(seen.contains_key(t), "the history never produced {t} (seed {seed})");
    }
    let programs: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT data->>'program' FROM events WHERE event_type = 'ApplicationSubmitted' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        programs,
        ["job_stabilization_refund", "skill_upgrade", "vocational_training"],
        "seed {seed}"
    );
    let mut rebuilt = projections::pools::Pools::default();
    for (t, d) in &rows {
        rebuilt.apply(t, d).unwrap();
    }
    let mut conn = db.pool.acquire().await.unwrap();
    let live = all_quotas(&mut conn).await.unwrap();
    assert_eq!(live.len(), 1);
    for row in &live {
        let q = rebuilt.quota(&row.pool, row.year).expect("the rebuild has the quota");
        q.check();
        assert_eq!(
            (q.cap, q.committed, q.paid, q.recovered),
            (row.cap, row.committed, row.paid, row.recovered),
            "rebuild differs from live for {}/{} (seed {seed})",
            row.pool,
            row.year
        );
    }
    let reservations: Vec<(String, String, i32, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT application, pool, year, amount FROM quota_reservations ORDER BY application",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let rebuilt_reservations: Vec<_> =
        rebuilt.reservations.iter().map(|(a, (p, y, m))| (a.clone(), p.clone(), *y, *m)).collect();
    assert_eq!(reservations, rebuilt_reservations, "seed {seed}");
    let (committed, paid) = (live[0].committed, live[0].paid);
    assert!(
        committed > rust_decimal::Decimal::ZERO || paid > rust_decimal::Decimal::ZERO,
        "the quota was used"
    );
}
