//! `fundledger demo`: a synthetic province recorded through the real commands (the functions
//! of `commands`, on the service's pool, each its own transaction), so that a newcomer sees a
//! living ledger and dashboard after one command. Nothing here writes the log or a read model
//! any other way; a refusal by policy is counted, as a county office would see it.

use chrono::{Days, NaiveDate};
use serde_json::json;
use sqlx::PgPool;

use crate::commands::applications::{review, submit, PersonApplication, Review};
use crate::commands::payouts::{
    close_notice, file_objection_received, issue_payouts, open_notice, record_recovery,
    reissue_payout, resolve_objection, settle, BankAccount, Settlement,
};
use crate::commands::setup::{lock_balance, register_county, register_pool, set_quota};
use crate::personal::Keys;

/// A pool's division code and name, and its counties' (code, name).
type DemoPool = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// Pools (统筹地区) of the demo province, with their counties (区县).
const POOLS: [DemoPool; 4] = [
    (
        "371500",
        "聊城市",
        &[
            ("371502", "东昌府区"),
            ("371503", "茌平区"),
            ("371521", "阳谷县"),
            ("371522", "莘县"),
            ("371524", "东阿县"),
            ("371525", "冠县"),
            ("371526", "高唐县"),
            ("371581", "临清市"),
        ],
    ),
    (
        "370800",
        "济宁市",
        &[
            ("370811", "任城区"),
            ("370812", "兖州区"),
            ("370826", "微山县"),
            ("370827", "鱼台县"),
            ("370828", "金乡县"),
            ("370829", "嘉祥县"),
            ("370830", "汶上县"),
            ("370831", "泗水县"),
            ("370832", "梁山县"),
            ("370881", "曲阜市"),
            ("370883", "邹城市"),
        ],
    ),
    (
        "370200",
        "青岛市",
        &[
            ("370202", "市南区"),
            ("370203", "市北区"),
            ("370211", "黄岛区"),
            ("370212", "崂山区"),
            ("370213", "李沧区"),
            ("370214", "城阳区"),
            ("370215", "即墨区"),
            ("370281", "胶州市"),
            ("370283", "平度市"),
            ("370285", "莱西市"),
        ],
    ),
    (
        "370600",
        "烟台市",
        &[
            ("370602", "芝罘区"),
            ("370611", "福山区"),
            ("370612", "牟平区"),
            ("370613", "莱山区"),
            ("370614", "蓬莱区"),
            ("370681", "龙口市"),
            ("370682", "莱阳市"),
            ("370683", "莱州市"),
            ("370685", "招远市"),
            ("370686", "栖霞市"),
            ("370687", "海阳市"),
        ],
    ),
];

/// Occupations of the skill-upgrade catalog (鲁人社发〔2024〕8号 annex).
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
const SURNAMES: [&str; 12] =
    ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马"];
const GIVEN: [&str; 10] =
    ["建国", "秀英", "志强", "丽娜", "海燕", "伟", "静", "磊", "晓明", "桂兰"];
/// Approved applications of one county that go into one notice.
const NOTICE_LINES_MAX: usize = 40;

/// What the demo recorded.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub submitted: usize,
    pub refused_at_submission: usize,
    pub approved: usize,
    pub rejected: usize,
    pub notices: usize,
    pub objections: usize,
    pub payouts: usize,
    pub failed: usize,
    pub reissued: usize,
    pub recoveries: usize,
}

/// A valid resident ID number (GB 11643) for person `n` of `county`.
fn id_number(county: &str, n: usize) -> String {
    let born = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + Days::new((n * 7 % 12_000) as u64);
    let body = format!("{county}{}{:03}", born.format("%Y%m%d"), n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap_or(0) * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a calendar date")
}

/// Application `i`: its county and its body as a county office submits it.
fn application(i: usize) -> (&'static str, &'static str, PersonApplication) {
    let (pool, _, counties) = POOLS[i % POOLS.len()];
    let (county, _) = counties[(i / POOLS.len()) % counties.len()];
    // Every 25th applicant applied before, in the neighbouring county: the annual limit (or
    // training and skill upgrade being exclusive) refuses it at submission, across counties.
    let person = if i % 25 == 24 {
        let earlier = i - POOLS.len();
        id_number(counties[(earlier / POOLS.len()) % counties.len()].0, earlier / POOLS.len())
    } else {
        id_number(county, i / POOLS.len())
    };
    let name = format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / 7) % GIVEN.len()]);
    let spread = (i * 37 % 200) as u64;
    if pool == "371500" && i.is_multiple_of(3) {
        // Liaocheng's training subsidy (聊城 2024), on the expansion pilot: it moves the gauge.
        let submitted = day(2024, 9, 20) + Days::new(spread % 90);
        let body = json!({
            "county": county, "submitted_on": submitted,
            "applicant": {"id_number": person, "name": name},
            "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
            "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                         "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 40},
            "funding": "expansion_pilot"
        });
        let app = serde_json::from_value(body).expect("a valid training application");
        return (pool, county, PersonApplication::Training(app));
    }
    let (submitted, issued) = if pool == "370800" && i.is_multiple_of(2) {
        let s = day(2025, 4, 20) + Days::new(spread);
        (s, s - Days::new(60))
    } else {
        let s = day(2024, 2, 1) + Days::new(spread + (i % 100) as u64);
        (s, s - Days::new(30))
    };
    let body = json!({
        "county": county, "submitted_on": submitted,
        "applicant": {"id_number": person, "name": name},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": OCCUPATIONS[i % OCCUPATIONS.len()], "level": 4 - (i % 2) as u8,
                        "number": format!("S{:013}", i), "issued_on": issued}
    });
    let app = serde_json::from_value(body).expect("a valid skill-upgrade application");
    (pool, county, PersonApplication::SkillUpgrade(app))
}

/// Records the province: pools, counties, balances and 2024 quotas, then `applications`
/// applications through review, notice (with objections), payout, the bank's results (with
/// failures and reissues) and recoveries. `tick` is called once per application.
pub async fn run(
    pool: &PgPool,
    keys: &Keys,
    applications: usize,
    today: NaiveDate,
    tick: impl Fn(),
) -> anyhow::Result<Summary> {
    let admin = "demo admin";
    for (code, name, counties) in POOLS {
        let code = policy::DivisionCode::parse(code)?;
        register_pool(pool, &code, name, admin).await?;
        for (c, n) in counties {
            register_county(pool, &policy::DivisionCode::parse(c)?, n, &code, admin).await?;
        }
        let balance = policy::Amount::parse(if code.as_str() == "371500" {
            "1000000.00"
        } else {
            "120000000.00"
        })?;
        lock_balance(
            pool,
            &code,
            day(2023, 12, 31),
            balance,
            "demo: 历史结余基金封定",
            today,
            admin,
        )
        .await?;
        set_quota(pool, &code, 2024, policy::Ratio::parse("0.15")?, "demo: 额度备案", admin)
            .await?;
    }
    let mut summary = Summary::default();
    // Approved and not yet noticed, per county: (id, submitted_on).
    let mut waiting: std::collections::BTreeMap<&str, Vec<(String, NaiveDate)>> =
        Default::default();
    for i in 0..applications {
        let (_, county, app) = application(i);
        let clerk = format!("demo clerk {county}");
        let reviewer = format!("demo reviewer {county}");
        let submitted_on = match &app {
            PersonApplication::SkillUpgrade(a) => a.submitted_on,
            PersonApplication::Training(a) => a.submitted_on,
        };
        match submit(pool, keys, &app, &clerk, today).await {
            Ok(s) => {
                summary.submitted += 1;
                let decision = if i % 10 == 7 {
                    Review::Reject {
                        reasons: vec!["材料不全：证书信息与全国联网查询结果不符".into()],
                    }
                } else {
                    Review::Approve
                };
                match review(pool, &s.id, &decision, &reviewer, today).await {
                    Ok(_) if matches!(decision, Review::Approve) => {
                        summary.approved += 1;
                        let queue = waiting.entry(county).or_default();
                        queue.push((s.id, submitted_on));
                        if queue.len() >= NOTICE_LINES_MAX {
                            let batch = std::mem::take(queue);
                            notice_and_pay(pool, keys, county, batch, today, &mut summary).await?;
                        }
                    }
                    Ok(_) => summary.rejected += 1,
                    // The quota ran out, as it does in a real year: the reviewer sees 409.
                    Err(_) => summary.rejected += 1,
                }
            }
            Err(_) => summary.refused_at_submission += 1,
        }
        tick();
    }
    for (county, batch) in waiting {
        if !batch.is_empty() {
            notice_and_pay(pool, keys, county, batch, today, &mut summary).await?;
        }
    }
    Ok(summary)
}

/// One county's notice for `batch`, an objection or two, then payouts and the bank's results.
async fn notice_and_pay(
    pool: &PgPool,
    keys: &Keys,
    county: &str,
    batch: Vec<(String, NaiveDate)>,
    today: NaiveDate,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let clerk = format!("demo clerk {county}");
    let reviewer = format!("demo reviewer {county}");
    let finance = "demo finance";
    let latest = batch.iter().map(|(_, d)| *d).max().unwrap_or(today);
    let starts_on = latest + Days::new(3);
    let ids: Vec<String> = batch.into_iter().map(|(id, _)| id).collect();
    let notice = open_notice(pool, county, starts_on, &ids, &clerk, today).await?;
    summary.notices += 1;
    // Every fourth notice draws an objection; every other objection is upheld.
    if summary.notices.is_multiple_of(4) {
        let target = &ids[summary.notices % ids.len()];
        let summary_text = "群众反映：申请人培训期间未实际参训";
        let filed = file_objection_received(
            pool,
            &notice.id,
            target,
            summary_text,
            Some(starts_on),
            &clerk,
            today,
        )
        .await;
        if let Ok(objection) = filed {
            summary.objections += 1;
            let upheld = summary.objections.is_multiple_of(2);
            let note = if upheld {
                "经核实情况属实，不予发放"
            } else {
                "经核实，申请人按期参训，异议不成立"
            };
            resolve_objection(pool, &objection, upheld, note, &reviewer, today).await?;
        }
    }
    let cleared = close_notice(pool, &notice.id, &clerk, today).await?;
    if cleared.is_empty() {
        return Ok(());
    }
    let paid_on = notice.ends_on + Days::new(5);
    let payouts = issue_payouts(pool, &cleared, paid_on, finance, today).await?;
    for (k, payout) in payouts.iter().enumerate() {
        summary.payouts += 1;
        if (summary.payouts + k).is_multiple_of(20) {
            let failed = Settlement::Failed { reason: "账户已销户".into() };
            settle(pool, payout, &failed, finance, today).await?;
            summary.failed += 1;
            if !summary.failed.is_multiple_of(5) {
                let account = BankAccount {
                    bank: "中国农业银行".into(),
                    number: format!("62284800{:011}", summary.payouts),
                };
                let again = reissue_payout(
                    pool,
                    keys,
                    payout,
                    &account,
                    paid_on + Days::new(10),
                    finance,
                    today,
                )
                .await;
                if let Ok(again) = again {
                    let done = Settlement::Settled {
                        bank_reference: format!("DEMO-R{}", summary.payouts),
                    };
                    settle(pool, &again, &done, finance, today).await?;
                    summary.reissued += 1;
                }
            }
        } else {
            let done = Settlement::Settled { bank_reference: format!("DEMO-{}", summary.payouts) };
            settle(pool, payout, &done, finance, today).await?;
            if summary.payouts.is_multiple_of(50) {
                let money = policy::Money::parse("300.00")?;
                let application = &cleared[k.min(cleared.len() - 1)];
                if record_recovery(pool, application, money, "骗取补贴，依法追回", finance, today)
                    .await
                    .is_ok()
                {
                    summary.recoveries += 1;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::classification::Classification;

    /// The demo's certificates and trainings name occupations of the 2022 classification
    /// (an invalid code would be refused, and `serve --demo` would stop).
    #[test]
    fn the_demo_uses_occupations_of_the_2022_classification() {
        for code in OCCUPATIONS.into_iter().chain(["4-10-01-05"]) {
            let code = policy::OccupationCode::parse(code).unwrap();
            Classification::shipped().check(&code, "occupation_code").unwrap();
        }
    }
}
