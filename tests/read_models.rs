//! Rebuild equals live: a random history of a few thousand commands (every program, every
//! path of the lifecycle, refusals included) runs against real PostgreSQL; then the pure
//! folds of the whole log must give exactly the rows the commands kept inline, table by
//! table and row for row: the quota (migration 0002) and every lifecycle table (0003).
//! Every refusal is checked to have recorded nothing.
//!
//! The history is random but reproducible: set FUNDLEDGER_TEST_SEED to replay a failing one.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use fundledger::commands::applications::{
    confirm_screened, review, submit, submit_pilot, submit_refund, withdraw, Confirmation,
    PersonApplication, Review,
};
use fundledger::commands::payouts::{
    close_notice, file_objection, issue_payouts, open_notice, record_recovery, reissue_payout,
    resolve_objection, settle, BankAccount, Settlement,
};
use fundledger::commands::setup::{lock_balance, register_county, register_pool, set_quota};
use fundledger::personal::Keys;
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use fundledger::read_models::{
    all_application_statuses, all_entries, all_notice_lines, all_notices, all_objections,
    all_payouts, all_quotas, all_spending,
};
use policy::job_stabilization::SizeClass;
use policy::{Amount, DivisionCode, Money, Ratio};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
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
const COMMANDS: usize = 3_000;
/// Few enough that people come back (annual limits, the same occupation twice), enough that
/// submissions keep passing all along the history.
const PERSONS: u32 = 400;
/// The history's clock runs over this many days from the first payout date, so money moves
/// in several months and years (spending is booked by month).
const DAYS: i64 = 75;

fn application(rng: &mut StdRng) -> PersonApplication {
    let person = rng.gen_range(0..PERSONS);
    let occupation = OCCUPATIONS[rng.gen_range(0..OCCUPATIONS.len())];
    let level = rng.gen_range(3..=5);
    if rng.gen_bool(0.7) {
        // Mostly insured trainees the office pays from the pilot (counted against the cap);
        // some benefit recipients (ordinary spending) and some employment-subsidy trainees.
        let (eligibility, funding) = match rng.gen_range(0..10) {
            0..=6 => (
                json!({"insured_months": 20, "receiving_unemployment_benefit": false}),
                json!("expansion_pilot"),
            ),
            7..=8 => (json!({"receiving_unemployment_benefit": true}), json!(null)),
            _ => (json!({"receiving_unemployment_benefit": false}), json!(null)),
        };
        let mut body = json!({
            "county": "371502", "submitted_on": "2024-10-20",
            "applicant": {"id_number": id_number(person), "name": "周八"},
            "eligibility": eligibility,
            "training": {"catalog": "urgent", "occupation_code": occupation, "level": level,
                         "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 56}
        });
        if !funding.is_null() {
            body["funding"] = funding;
        }
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
        // 免申即享 now and then: confirmed by the enterprise before review.
        "screened": rng.gen_bool(0.5),
        "enterprise": {"credit_code": code, "name": "威海某企业", "size": if rng.gen_bool(0.5) { "sme" } else { "large" },
                       "kind": "enterprise", "labour_dispatch": false},
        "premiums": {"paid_last_year": "88888.88", "months_paid_in_full": 13},
        "staff": {"insured_employees": 40, "laid_off_last_year": rng.gen_range(0..4)}
    }))
    .unwrap()
}

/// A valid unified social credit code (GB 32100) with the given 17 leading characters.
fn credit_code(body: &str) -> String {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let sum: usize = body.chars().zip(WEIGHTS).map(|(c, w)| CHARS.find(c).unwrap() * w).sum();
    format!("{body}{}", CHARS.chars().nth((31 - sum % 31) % 31).unwrap())
}

/// A labour-dispatch company's refund (劳务派遣), paid per payee: one to three host employers,
/// now and then a public institution (nothing for its workers), and the company's own staff.
fn dispatch_refund(rng: &mut StdRng) -> policy::job_stabilization::JobStabilizationApplication {
    let company = credit_code(&format!("91371000MA3D{:04}X", rng.gen_range(0..40)));
    let mut hosts = Vec::new();
    let (mut workers, mut premiums) = (10, Decimal::new(1_200_000, 2));
    for h in 0..rng.gen_range(1..=3) {
        let kind = if rng.gen_bool(0.25) { "public_institution" } else { "enterprise" };
        let (n, paid) = (rng.gen_range(5..40), Decimal::new(rng.gen_range(100_000..9_000_000), 2));
        workers += n;
        premiums += paid;
        hosts.push(json!({
            "credit_code": credit_code(&format!("91371000MA3E{h}{:03}X", rng.gen_range(0..100))),
            "name": format!("威海某用工单位{h}"), "kind": kind, "dispatched_workers": n,
            "premiums_paid_last_year": paid.to_string(),
        }));
    }
    serde_json::from_value(json!({
        "county": "371002", "submitted_on": "2024-08-01",
        "enterprise": {"credit_code": company, "name": "威海某劳务派遣公司", "size": "sme",
                       "kind": "enterprise", "labour_dispatch": true},
        "premiums": {"paid_last_year": premiums.to_string(), "months_paid_in_full": 13},
        "staff": {"insured_employees": workers, "laid_off_last_year": 0},
        "dispatch": {"own_staff": {"employees": 10, "premiums_paid_last_year": "12000.00"},
                     "hosts": hosts}
    }))
    .unwrap()
}

/// The status the ledger holds for an application, as the history aims by it: with several
/// payouts to an application (one per payee), settling one does not settle the application.
async fn stored_status(db: &sqlx::PgPool, id: &str) -> &'static str {
    let s: String =
        sqlx::query_scalar("SELECT status FROM application_status WHERE application = $1")
            .bind(id)
            .fetch_one(db)
            .await
            .unwrap();
    projections::applications::Status::ALL.iter().find(|x| x.as_str() == s).unwrap().as_str()
}

/// A pilot subsidy (岗位补贴 to a unit, or 职业技能评价补贴 to a person), counted against the
/// 2024 cap at review.
fn pilot(rng: &mut StdRng) -> policy::pilot_subsidy::PilotSubsidyApplication {
    let beneficiary = if rng.gen_bool(0.5) {
        json!({"credit_code": "91371000MA3C1234XT", "name": "聊城某单位"})
    } else {
        json!({"id_number": id_number(rng.gen_range(0..40)), "name": "李四"})
    };
    let category = if rng.gen_bool(0.5) { "job" } else { "skill_evaluation" };
    serde_json::from_value(json!({
        "category": category, "county": "371502", "submitted_on": "2024-08-01",
        "beneficiary": beneficiary, "amount": format!("{}.50", rng.gen_range(100..2000)),
        "basis": "岗位补贴核定表"
    }))
    .unwrap()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.gen_range(0..items.len())])
}

/// What the history believes of an application, to aim commands at ones they fit.
#[derive(Debug, Clone)]
struct Aim {
    status: &'static str,
    pool: String,
    amount: Decimal,
    recovered: Decimal,
}

/// Panics at the first row where the stored table and the fold differ, showing both.
fn same_rows<T: PartialEq + std::fmt::Debug>(table: &str, live: &[T], rebuilt: &[T], seed: u64) {
    if live == rebuilt {
        return;
    }
    let at =
        live.iter().zip(rebuilt).position(|(l, r)| l != r).unwrap_or(live.len().min(rebuilt.len()));
    panic!(
        "{table}: the stored rows differ from the fold of the log (seed {seed}): {} stored, {} folded; first difference at row {at}:\n stored: {:?}\n folded: {:?}",
        live.len(),
        rebuilt.len(),
        live.get(at),
        rebuilt.get(at),
    );
}

/// The double-entry view against everything else that counts the same money, exactly:
/// - every pool's month is a trial balance whose debits equal its credits;
/// - the spending report's figures of that month are the entries' (paid = what the sources
///   and 退回待重发 were debited; failed = what 退回待重发 was credited; recovered = what the
///   sources were credited) and so is its net;
/// - the same figures summed from the payout events of the log themselves;
/// - over all months, the expansion quota's account is `quota_usage`'s `paid − recovered`,
///   and the first issues (not the reissues) of quota money less its recoveries in the log.
fn the_books_agree(
    log: &[(String, serde_json::Value)],
    entries: &[(projections::entries::EntryKey, projections::entries::Sides)],
    spending: &[(projections::spending::SpendingKey, projections::spending::Figures)],
    quotas: &[fundledger::read_models::QuotaRow],
    seed: u64,
) {
    use projections::entries::{Account, TrialBalance};
    type Month = (String, String);
    let zero = Decimal::ZERO;
    let mut months: BTreeMap<Month, Vec<(&str, &projections::entries::Sides)>> = BTreeMap::new();
    for (k, s) in entries {
        months.entry((k.pool.clone(), k.month.clone())).or_default().push((k.account.as_str(), s));
    }
    // From the spending report: (paid, failed, recovered) per pool and month.
    let mut report: BTreeMap<Month, (Decimal, Decimal, Decimal)> = BTreeMap::new();
    for (k, f) in spending {
        let r = report.entry((k.pool.clone(), k.month.clone())).or_default();
        r.0 += f.paid;
        r.1 += f.failed;
        r.2 += f.recovered;
    }
    // From the log itself.
    let month = |d: &serde_json::Value, field: &str| d[field].as_str().unwrap()[..7].to_string();
    let amount = |d: &serde_json::Value| d["amount"].as_str().unwrap().parse::<Decimal>().unwrap();
    let mut events: BTreeMap<Month, (Decimal, Decimal, Decimal)> = BTreeMap::new();
    let mut issued: BTreeMap<String, (String, Decimal)> = BTreeMap::new();
    let mut quota_from_log: BTreeMap<String, Decimal> = BTreeMap::new();
    for (t, d) in log {
        let pool = d["pool"].as_str().map(str::to_string);
        match t.as_str() {
            "PayoutIssued" => {
                let (pool, a) = (pool.unwrap(), amount(d));
                events.entry((pool.clone(), month(d, "paid_on"))).or_default().0 += a;
                if d["counts_against_quota"] == json!(true) && d.get("reissue_of").is_none() {
                    *quota_from_log.entry(pool.clone()).or_default() += a;
                }
                issued.insert(d["payout"].as_str().unwrap().to_string(), (pool, a));
            }
            "PayoutFailed" => {
                let (pool, a) = issued[d["payout"].as_str().unwrap()].clone();
                events.entry((pool, month(d, "failed_on"))).or_default().1 += a;
            }
            "RecoveryRecorded" => {
                let (pool, a) = (pool.unwrap(), amount(d));
                events.entry((pool.clone(), month(d, "recovered_on"))).or_default().2 += a;
                if d["counts_against_quota"] == json!(true) {
                    *quota_from_log.entry(pool).or_default() -= a;
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        months.keys().collect::<Vec<_>>(),
        report.keys().collect::<Vec<_>>(),
        "the entries and the spending report cover the same pools and months (seed {seed})"
    );
    let mut quota_account: BTreeMap<String, Decimal> = BTreeMap::new();
    for (key, rows) in &months {
        let tb = TrialBalance::of(rows.iter().copied());
        assert!(
            tb.balanced && tb.total_debit > zero,
            "{key:?} does not balance (seed {seed}): {tb:?}"
        );
        let line = |a: Account| tb.lines.iter().find(|l| l.account == a.as_str()).unwrap();
        let (fund, quota, returned) =
            (line(Account::Fund), line(Account::ExpansionQuota), line(Account::Returned));
        let from_entries = (
            fund.debit + quota.debit + returned.debit,
            returned.credit,
            fund.credit + quota.credit,
        );
        assert_eq!(from_entries, report[key], "{key:?}: entries vs spending (seed {seed})");
        assert_eq!(from_entries, events[key], "{key:?}: entries vs the log (seed {seed})");
        let (paid, failed, recovered) = report[key];
        assert_eq!(
            fund.balance + quota.balance + returned.balance,
            paid - failed - recovered,
            "{key:?}: net spending (seed {seed})"
        );
        assert_eq!(line(Account::Recovered).debit, recovered, "{key:?} (seed {seed})");
        *quota_account.entry(key.0.clone()).or_default() += quota.balance;
    }
    let mut quota_usage: BTreeMap<String, Decimal> = BTreeMap::new();
    for q in quotas {
        *quota_usage.entry(q.pool.clone()).or_default() += q.paid - q.recovered;
    }
    quota_account.retain(|_, v| *v != zero);
    quota_usage.retain(|_, v| *v != zero);
    quota_from_log.retain(|_, v| *v != zero);
    assert!(!quota_usage.is_empty(), "quota money moved (seed {seed})");
    assert_eq!(quota_account, quota_usage, "扩围额度 vs quota_usage (seed {seed})");
    assert_eq!(quota_account, quota_from_log, "扩围额度 vs the log (seed {seed})");
}

async fn last_event(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events").fetch_one(db).await.unwrap()
}

#[tokio::test]
async fn the_fold_of_the_log_equals_every_read_model_kept_inline() {
    let started = std::time::Instant::now();
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
        "state-council-holidays.toml",
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
    // A cap of 30000.00: small enough that approvals meet quota_exceeded, large enough that
    // expansion money keeps flowing as recoveries free some.
    lock_balance(
        &db.pool,
        &liaocheng,
        date("2023-12-31"),
        Amount::parse("200000.00").unwrap(),
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
    let first_payday = date("2024-11-12");
    let mut state: BTreeMap<String, Aim> = BTreeMap::new();
    let (mut notices, mut objections, mut payouts) = (Vec::new(), Vec::new(), Vec::new());
    let mut screened: Vec<String> = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    let mut refusals = BTreeMap::<String, usize>::new();
    let mut last = last_event(&db.pool).await;
    // Most commands are aimed at applications they fit; one in five at random, to meet
    // refusals too.
    fn aim(rng: &mut StdRng, state: &BTreeMap<String, Aim>, wanted: &str) -> Option<String> {
        let fitting: Vec<&String> =
            state.iter().filter(|(_, a)| a.status == wanted).map(|(id, _)| id).collect();
        if rng.gen_bool(0.8) && !fitting.is_empty() {
            return pick(rng, &fitting).map(|s| s.to_string());
        }
        (!state.is_empty())
            .then(|| state.keys().nth(rng.gen_range(0..state.len())).unwrap().clone())
    }
    for i in 0..COMMANDS {
        // Time moves forward: payouts, settlements and recoveries of later commands fall in
        // later months.
        let today = first_payday + chrono::Duration::days(DAYS * i as i64 / COMMANDS as i64);
        let mut touched: Option<String> = None;
        let outcome: Result<(), String> = match rng.gen_range(0..100) {
            0..=19 => submit(&db.pool, &keys, &application(&mut rng), "clerk", today)
                .await
                .map(|s| {
                    let amount = s.decision.amount.value.value();
                    let aim = Aim {
                        status: "submitted",
                        pool: s.pool.to_string(),
                        amount,
                        recovered: Decimal::ZERO,
                    };
                    state.insert(s.id, aim);
                })
                .map_err(|e| e.code().to_string()),
            22..=23 => submit_pilot(&db.pool, &keys, &pilot(&mut rng), "clerk", today)
                .await
                .map(|s| {
                    let amount = s.decision.amount.value.value();
                    let aim = Aim {
                        status: "submitted",
                        pool: s.pool.to_string(),
                        amount,
                        recovered: Decimal::ZERO,
                    };
                    state.insert(s.id, aim);
                })
                .map_err(|e| e.code().to_string()),
            20..=21 => {
                let body =
                    if rng.gen_bool(0.35) { refund(&mut rng) } else { dispatch_refund(&mut rng) };
                submit_refund(&db.pool, &body, "clerk", today)
                    .await
                    .map(|s| {
                        if body.screened {
                            screened.push(s.id.clone());
                        }
                        let amount = s.decision.amount.value.value();
                        let aim = Aim {
                            status: "submitted",
                            pool: s.pool.to_string(),
                            amount,
                            recovered: Decimal::ZERO,
                        };
                        state.insert(s.id, aim);
                    })
                    .map_err(|e| e.code().to_string())
            }
            24..=43 => match aim(&mut rng, &state, "submitted") {
                // Mostly a screened refund awaiting its confirmation, now and then another.
                Some(other) if rng.gen_bool(0.25) => {
                    let waiting: Vec<&String> =
                        screened.iter().filter(|id| state[*id].status == "submitted").collect();
                    let id = match pick(&mut rng, &waiting) {
                        Some(id) if rng.gen_bool(0.8) => id.to_string(),
                        _ => other,
                    };
                    let confirmation = Confirmation {
                        confirmed_by: "张经理".into(),
                        confirmed_on: date("2024-08-05"),
                        size_class: if rng.gen_bool(0.8) {
                            SizeClass::Small
                        } else {
                            SizeClass::Medium
                        },
                        corporate_account: rng.gen_bool(0.5),
                    };
                    confirm_screened(&db.pool, &id, &confirmation, "clerk", today)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.code().to_string())
                }
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
                            state.get_mut(&id).unwrap().status =
                                if approve { "approved" } else { "rejected" }
                        })
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            44..=47 => {
                let wanted = if rng.gen_bool(0.5) { "approved" } else { "in_notice" };
                match aim(&mut rng, &state, wanted) {
                    Some(id) => withdraw(&db.pool, &id, "申请人放弃", "clerk", today)
                        .await
                        .map(|_| state.get_mut(&id).unwrap().status = "withdrawn")
                        .map_err(|e| e.code().to_string()),
                    None => Ok(()),
                }
            }
            48..=57 => {
                let pool = if rng.gen_bool(0.7) { "371500" } else { "371000" };
                let county = if pool == "371500" { "371502" } else { "371002" };
                let mut some: Vec<String> = state
                    .iter()
                    .filter(|(_, a)| a.status == "approved" && a.pool == pool)
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
                                state.get_mut(id).unwrap().status = "in_notice";
                            }
                            notices.push((n.id, some.clone()));
                        })
                        .map_err(|e| e.code().to_string())
                }
            }
            58..=62 => match pick(&mut rng, &notices).cloned() {
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
            63..=67 => match pick(&mut rng, &objections).cloned() {
                Some((o, id)) => {
                    resolve_objection(&db.pool, &o, rng.gen_bool(0.5), "已核查", "reviewer", today)
                        .await
                        .map(|status| {
                            if status.as_str() == "rejected" || status.as_str() == "cleared" {
                                state.get_mut(&id).unwrap().status = status.as_str();
                            }
                        })
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            68..=74 => match pick(&mut rng, &notices).cloned() {
                Some((notice, _)) => close_notice(&db.pool, &notice, "clerk", date("2024-11-09"))
                    .await
                    .map(|cleared| {
                        for id in cleared {
                            state.get_mut(&id).unwrap().status = "cleared";
                        }
                    })
                    .map_err(|e| e.code().to_string()),
                None => Ok(()),
            },
            75..=82 => match aim(&mut rng, &state, "cleared") {
                Some(id) => issue_payouts(
                    &db.pool,
                    std::slice::from_ref(&id),
                    today - chrono::Duration::days(rng.gen_range(0..3)),
                    "finance",
                    today,
                )
                .await
                .map(|p| {
                    state.get_mut(&id).unwrap().status = "payout_issued";
                    payouts.extend(p.into_iter().map(|p| (p, id.clone())));
                })
                .map_err(|e| e.code().to_string()),
                None => Ok(()),
            },
            83..=94 => match pick(&mut rng, &payouts).cloned() {
                // A failed payout is mostly reissued to a corrected account.
                Some((p, id)) if state[&id].status == "payout_failed" && rng.gen_bool(0.7) => {
                    touched = Some(id.clone());
                    let account = BankAccount {
                        bank: "中国农业银行聊城分行".into(),
                        number: format!("6228480{i:012}"),
                    };
                    reissue_payout(&db.pool, &keys, &p, &account, today, "finance", today)
                        .await
                        .map(|new| payouts.push((new, id.clone())))
                        .map_err(|e| e.code().to_string())
                }
                Some((p, id)) => {
                    touched = Some(id.clone());
                    let s = if rng.gen_bool(0.8) {
                        Settlement::Settled { bank_reference: format!("B{i}") }
                    } else {
                        Settlement::Failed { reason: "账户已销户".into() }
                    };
                    settle(&db.pool, &p, &s, "finance", today)
                        .await
                        .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
            _ => match aim(&mut rng, &state, "settled") {
                Some(id) => {
                    let a = &state[&id];
                    // Part of the money, or all that is left (the slot is freed), or now and
                    // then more than is left (refused).
                    let amount = match rng.gen_range(0..4) {
                        0 if a.amount - a.recovered > Decimal::ZERO => a.amount - a.recovered,
                        1 => Decimal::new(60_000, 2),
                        _ => Decimal::new(10_000, 2),
                    };
                    record_recovery(
                        &db.pool,
                        &id,
                        Money::parse(&amount.to_string()).unwrap(),
                        "追回",
                        "finance",
                        today,
                    )
                    .await
                    .map(|_| {
                        let a = state.get_mut(&id).unwrap();
                        a.recovered += amount;
                        if a.recovered >= a.amount {
                            a.status = "recovered";
                        }
                    })
                    .map_err(|e| e.code().to_string())
                }
                None => Ok(()),
            },
        };
        let now = last_event(&db.pool).await;
        // What a payout's settlement, failure or reissue did to its application depends on
        // its other payouts: read it back.
        if let Some(id) = touched {
            state.get_mut(&id).unwrap().status = stored_status(&db.pool, &id).await;
        }
        match outcome {
            Ok(()) => ok += 1,
            Err(code) => {
                assert_ne!(code, "internal", "a command failed inside (seed {seed})");
                assert_eq!(now, last, "a refusal ({code}) recorded an event (seed {seed})");
                refused += 1;
                *refusals.entry(code).or_default() += 1;
            }
        }
        last = now;
    }
    let ran = started.elapsed();
    eprintln!("{ok} commands succeeded, {refused} were refused ({refusals:?}), in {ran:?}");
    assert!(
        ok > COMMANDS / 3 && refused > 0,
        "the history exercises both paths: {ok} ok, {refused} refused"
    );

    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT event_type, data FROM events ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let mut seen = BTreeMap::<&str, usize>::new();
    for (t, _) in &rows {
        *seen.entry(t.as_str()).or_default() += 1;
    }
    eprintln!("{} events: {seen:?}", rows.len());
    for t in [
        "ApplicationSubmitted",
        "ApplicationApproved",
        "ApplicationRejected",
        "ApplicationWithdrawn",
        "NoticeOpened",
        "ApplicationNoticed",
        "ObjectionFiled",
        "ObjectionResolved",
        "NoticeClosed",
        "ApplicationCleared",
        "PayoutIssued",
        "PayoutSettled",
        "PayoutFailed",
        "RecoveryRecorded",
        "ApplicationConfirmed",
    ] {
        assert!(seen.contains_key(t), "the history never produced {t} (seed {seed})");
    }
    let reissues: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'PayoutIssued' AND data ? 'reissue_of'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(reissues > 0, "the history never reissued a failed payout (seed {seed})");
    let per_payee: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events e
          WHERE event_type IN ('PayoutIssued', 'PayoutSettled', 'PayoutFailed')
            AND EXISTS (SELECT 1 FROM events i WHERE i.event_type = 'PayoutIssued'
                         AND i.data->>'payout' = e.data->>'payout' AND i.data ? 'line')
          GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    eprintln!("payouts per payee: {per_payee:?}");
    assert_eq!(
        per_payee.len(),
        3,
        "labour-dispatch payouts issued, settled and failed (seed {seed})"
    );
    let programs: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT data->>'program' FROM events WHERE event_type = 'ApplicationSubmitted' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        programs,
        ["job_stabilization_refund", "pilot_subsidy", "skill_upgrade", "vocational_training"],
        "seed {seed}"
    );

    let mut rebuilt = projections::ReadModels::default();
    for (t, d) in &rows {
        rebuilt.apply(t, d).unwrap();
    }
    let mut conn = db.pool.acquire().await.unwrap();

    // The quota (migration 0002).
    let live = all_quotas(&mut conn).await.unwrap();
    assert_eq!(live.len(), 1);
    for row in &live {
        let q = rebuilt.pools.quota(&row.pool, row.year).expect("the rebuild has the quota");
        q.check();
        assert_eq!(
            (q.cap, q.committed, q.paid, q.recovered),
            (row.cap, row.committed, row.paid, row.recovered),
            "rebuild differs from live for {}/{} (seed {seed})",
            row.pool,
            row.year
        );
    }
    assert!(
        live[0].committed > Decimal::ZERO || live[0].paid > Decimal::ZERO,
        "the quota was used"
    );

    // The lifecycle (migration 0003), every table.
    let apps = &rebuilt.applications;
    let statuses = all_application_statuses(&mut conn).await.unwrap();
    same_rows("application_status", &statuses, &apps.status_rows(), seed);
    let notice_rows = all_notices(&mut conn).await.unwrap();
    same_rows("notices", &notice_rows, &rebuilt.notices.notice_rows(), seed);
    let lines = all_notice_lines(&mut conn).await.unwrap();
    same_rows("notice_lines", &lines, &rebuilt.notices.line_rows(), seed);
    let objection_rows = all_objections(&mut conn).await.unwrap();
    same_rows("objections", &objection_rows, &rebuilt.notices.objection_rows(), seed);
    let payout_rows = all_payouts(&mut conn).await.unwrap();
    same_rows("payouts", &payout_rows, &rebuilt.payouts.rows(), seed);
    let spending = all_spending(&mut conn).await.unwrap();
    same_rows("spending", &spending, &rebuilt.spending.rows(), seed);
    let entries = all_entries(&mut conn).await.unwrap();
    same_rows("ledger_entries", &entries, &rebuilt.entries.rows(), seed);
    the_books_agree(&rows, &entries, &spending, &live, seed);

    // A replay decodes each event from the jsonb's text straight into its type; the commands
    // and the fold above decode `Value`s. Both ways give the same read models, for every kind
    // of event this history holds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fundledger::store::sequence(&mut conn).await.unwrap().map(|p| p.0)
        != Some(rows.len() as i64)
    {
        assert!(std::time::Instant::now() < deadline, "the log was not sequenced");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let in_log_order: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT e.event_type, e.data FROM log l JOIN events e ON e.id = l.event_id \
          ORDER BY l.position",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut from_values = projections::ReadModels::default();
    for (t, d) in &in_log_order {
        from_values.apply(t, d).unwrap();
    }
    let replayed = fundledger::replay::replay(&mut conn, fundledger::replay::AsOf::Head, |_| {})
        .await
        .unwrap();
    assert_eq!(replayed.position, rows.len() as i64, "seed {seed}");
    assert!(replayed.models == from_values, "replay differs from the fold of Values (seed {seed})");

    // `fundledger rebuild` writes the same tables again from the log, through the same
    // definition: every table it writes equals the one the commands kept live.
    drop(conn);
    let mut owner = sqlx::ConnectOptions::connect(&db.owner).await.unwrap();
    let rebuilt_tables = fundledger::rebuild::rebuild(&mut owner, |_| {}).await.unwrap();
    assert_eq!(rebuilt_tables.events as usize, rows.len(), "seed {seed}");
    let mut conn = db.pool.acquire().await.unwrap();
    same_rows("quota_usage after rebuild", &all_quotas(&mut conn).await.unwrap(), &live, seed);
    same_rows(
        "application_status after rebuild",
        &all_application_statuses(&mut conn).await.unwrap(),
        &statuses,
        seed,
    );
    same_rows("notices after rebuild", &all_notices(&mut conn).await.unwrap(), &notice_rows, seed);
    same_rows(
        "notice_lines after rebuild",
        &all_notice_lines(&mut conn).await.unwrap(),
        &lines,
        seed,
    );
    same_rows(
        "objections after rebuild",
        &all_objections(&mut conn).await.unwrap(),
        &objection_rows,
        seed,
    );
    same_rows("payouts after rebuild", &all_payouts(&mut conn).await.unwrap(), &payout_rows, seed);
    same_rows("spending after rebuild", &all_spending(&mut conn).await.unwrap(), &spending, seed);
    same_rows(
        "ledger_entries after rebuild",
        &all_entries(&mut conn).await.unwrap(),
        &entries,
        seed,
    );

    // The comparison meant something: every status, both objection outcomes, money in
    // several months, failures and recoveries booked.
    let mut kinds: Vec<&str> = statuses.iter().map(|r| r.status.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    eprintln!(
        "{} applications ({kinds:?}), {} notices, {} lines, {} objections, {} payouts, {} spending rows",
        statuses.len(),
        notice_rows.len(),
        lines.len(),
        objection_rows.len(),
        payout_rows.len(),
        spending.len()
    );
    // Every status was passed through (the event types above); most are still held at the end.
    assert!(kinds.len() >= 8, "applications end in many states (seed {seed}): {kinds:?}");
    for outcome in ["upheld", "dismissed"] {
        assert!(objection_rows.iter().any(|o| o.status == outcome), "{outcome} (seed {seed})");
    }
    let months: std::collections::BTreeSet<&str> =
        spending.iter().map(|(k, _)| k.month.as_str()).collect();
    assert!(months.len() >= 2, "money moved in several months (seed {seed}): {months:?}");
    assert!(spending.iter().any(|(_, f)| f.failed > Decimal::ZERO), "seed {seed}");
    assert!(spending.iter().any(|(_, f)| f.recovered > Decimal::ZERO), "seed {seed}");
    assert!(statuses.iter().any(|s| s.slot.is_some()), "slots assigned (seed {seed})");
    eprintln!("whole test: {:?}", started.elapsed());
}
