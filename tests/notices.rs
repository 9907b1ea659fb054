//! The notices' rules as issue 13 corrected them, over HTTP against real PostgreSQL, with the
//! notices' own numbers: who pays a benefit recipient's training (outside the 15% cap), the
//! balance date the quota rests on, occupation codes of the 2022 classification, working days
//! of the State Council's calendar, objections received on paper.

mod common;

use common::{events, id_number, set_up, Api};
use serde_json::{json, Value};

/// 聊人社字〔2024〕12号: a 2025 class of the urgent catalog, 初级 600 yuan for 40 hours.
fn training_2025(person: u32, eligibility: Value) -> Value {
    json!({
        "program": "vocational_training", "county": "371502", "submitted_on": "2025-03-10",
        "applicant": {"id_number": id_number("371502", person), "name": "王小五"},
        "eligibility": eligibility,
        "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                     "assessment": "certificate", "class_start_on": "2025-03-03", "hours": 40}
    })
}

async fn submit_and_approve(api: &Api, body: &Value) -> (String, Value) {
    let r = api.post("clerk", "/v1/applications", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let submitted = r.json();
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (id, submitted)
}

/// 聊人社字〔2024〕12号 item 二 "失业人员在领取失业保险金期间参加培训，其培训补贴从失业保险基金
/// 列支": ordinary spending of the fund. In 2025, with no expansion pilot and no quota, such a
/// claim is approved, noticed and paid; an insured trainee the office puts under the pilot
/// still needs the year's quota.
#[tokio::test]
async fn a_2025_benefit_recipients_training_is_paid_without_a_quota() {
    let api = Api::start().await;
    set_up(&api).await;
    let before = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();

    let body = training_2025(1, json!({"receiving_unemployment_benefit": true}));
    let (id, submitted) = submit_and_approve(&api, &body).await;
    assert_eq!(submitted["amount"], "600.00");
    assert_eq!(submitted["funding"], "unemployment_insurance", "{submitted}");

    // Monday 2025-03-17: five working days end on Friday 2025-03-21.
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2025-03-17", "application_ids": [id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["ends_on"], "2025-03-21");
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post_keyed(
            "finance",
            "/v1/payouts",
            "pay-benefit-recipient",
            &json!({"application_ids": [id], "paid_on": "2025-03-25"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let app = api.get("clerk", &format!("/v1/applications/{id}")).await.json();
    assert_eq!(
        (app["status"].as_str(), app["amount"].as_str()),
        (Some("payout_issued"), Some("600.00"))
    );
    assert_eq!(app["funding"], "unemployment_insurance");
    // The 2024 quota did not move, and no 2025 quota was needed.
    assert_eq!(api.get("finance", "/v1/pools/371500/quotas/2024").await.json(), before);
    assert_eq!(api.get("finance", "/v1/pools/371500/quotas/2025").await.status, 404);

    // The office states the pilot for an insured trainee not on benefit: it counts against
    // the cap, and there is no 2025 quota.
    let mut insured =
        training_2025(2, json!({"insured_months": 14, "receiving_unemployment_benefit": false}));
    insured["funding"] = json!("expansion_pilot");
    let r = api.post("clerk", "/v1/applications", &insured).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["funding"], "expansion_pilot");
    let pilot = r.json()["id"].as_str().unwrap().to_string();
    let n = events(&api).await;
    let r = api
        .post(
            "reviewer",
            &format!("/v1/applications/{pilot}/review"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "quota_not_set"), "{}", r.text);
    assert_eq!(events(&api).await, n);

    // unemployment_insurance only for a benefit recipient; the pilot never for one; the pilot
    // only for an insured trainee.
    for (person, eligibility, funding) in [
        (
            3,
            json!({"insured_months": 14, "receiving_unemployment_benefit": false}),
            "unemployment_insurance",
        ),
        (4, json!({"receiving_unemployment_benefit": true}), "expansion_pilot"),
        (
            5,
            json!({"insured_months": 0, "receiving_unemployment_benefit": false}),
            "expansion_pilot",
        ),
    ] {
        let mut b = training_2025(person, eligibility);
        b["funding"] = json!(funding);
        let r = api.post("clerk", "/v1/applications", &b).await;
        assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"), "{}", r.text);
        assert_eq!(r.json()["errors"][0]["field"], "funding", "{}", r.text);
        assert_eq!(events(&api).await, n);
    }

    // As API.md writes it, with no insured_months: the office's statement vouches that the
    // trainee is insured, and the claim is the pilot's.
    let mut vouched = training_2025(6, json!({"receiving_unemployment_benefit": false}));
    vouched["funding"] = json!("expansion_pilot");
    let r = api.post("clerk", "/v1/applications", &vouched).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["funding"], "expansion_pilot");
}

/// 鲁人社发〔2024〕8号 item 六: 封定当地历史结余基金（截至2023年12月31日）.
#[tokio::test]
async fn the_locked_balance_is_the_one_as_of_2023_12_31() {
    let api = Api::start().await;
    for (path, body) in [
        ("/v1/pools", json!({"code": "371500", "name": "聊城市"})),
        ("/v1/counties", json!({"code": "371502", "name": "东昌府区", "pool": "371500"})),
    ] {
        assert_eq!(api.post("admin", path, &body).await.status, 201);
    }
    let n = events(&api).await;
    let r = api
        .post(
            "finance",
            "/v1/pools/371500/historical-balance",
            &json!({"as_of": "2024-06-30", "amount": "100000.00", "document": "聊财〔2024〕1号"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "balance_date_mismatch"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "as_of", "{}", r.text);
    assert!(r.text.contains("2023-12-31"), "{}", r.text);
    assert_eq!(events(&api).await, n);
    let r = api
        .post(
            "finance",
            "/v1/pools/371500/historical-balance",
            &json!({"as_of": "2023-12-31", "amount": "100000.00", "document": "聊财〔2024〕1号"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// The cap (15%, inclusive) is the policy crate's check: 100000.00 × 15% = 15000.00, which
/// spending may reach exactly, 25 × 600.00, and not pass.
#[tokio::test]
async fn review_applies_the_policy_crates_quota_check_inclusive() {
    let api = Api::start().await;
    set_up(&api).await;
    for person in 0..25 {
        let (_, s) = submit_and_approve(&api, &common::training(person)).await;
        assert_eq!(s["funding"], "expansion_pilot");
    }
    let q = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    assert_eq!(
        (q["committed"].as_str(), q["remaining"].as_str()),
        (Some("15000.00"), Some("0.00"))
    );
    let r = api.post("clerk", "/v1/applications", &common::training(25)).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "quota_exceeded"), "{}", r.text);
    assert!(r.text.contains("0.00 remains"), "{}", r.text);
}

/// Occupation codes of the national classification (2022 edition: 8 major, 79 middle,
/// 450 small groups, 1,639 occupations); a code the policy's own annex lists is taken as the
/// notice writes it.
#[tokio::test]
async fn an_occupation_code_in_no_classification_is_refused() {
    let api = Api::start().await;
    set_up(&api).await;
    let n = events(&api).await;
    let skill = json!({
        "program": "skill_upgrade", "county": "371502", "submitted_on": "2024-08-01",
        "applicant": {"id_number": id_number("371502", 9), "name": "张三"},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": "9-99-99-99", "level": 4, "number": "S1",
                        "issued_on": "2024-03-01"}
    });
    let r = api.post("clerk", "/v1/applications", &skill).await;
    assert_eq!((r.status, r.code().as_str()), (422, "unknown_occupation"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "certificate.occupation_code", "{}", r.text);
    let mut training = common::training(9);
    training["training"]["occupation_code"] = json!("9-99-99-99");
    let r = api.post("clerk", "/v1/applications", &training).await;
    assert_eq!((r.status, r.code().as_str()), (422, "unknown_occupation"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "training.occupation_code", "{}", r.text);
    // The message names the first level that does not exist.
    for (code, problem) in [
        (
            "6-18-02-99",
            "occupation 6-18-02-99 does not exist in small group 6-18-02 (机械热加工人员)",
        ),
        ("6-18-09-01", "small group 6-18-09 does not exist in middle group 6-18"),
        // Listed by Liaocheng's training annex, not a 2022 occupation: no annex of a
        // skill-upgrade policy lists it.
        ("2-02-10-09", "occupation 2-02-10-09 does not exist in small group 2-02-10"),
    ] {
        let mut body = skill.clone();
        body["certificate"]["occupation_code"] = json!(code);
        let r = api.post("clerk", "/v1/applications", &body).await;
        assert_eq!((r.status, r.code().as_str()), (422, "unknown_occupation"), "{}", r.text);
        let message = r.json()["errors"][0]["message"].as_str().unwrap().to_string();
        assert!(message.contains("中华人民共和国职业分类大典（2022年版）"), "{message}");
        assert!(message.contains(problem), "{code}: {message}");
    }
    assert_eq!(events(&api).await, n);
    // The same 2-02-10-09, 人工智能算法测试员 as Liaocheng's annex writes it: a training under
    // that notice is decided, 初级 600 yuan.
    let mut tester = common::training(10);
    tester["training"]["occupation_code"] = json!("2-02-10-09");
    let r = api.post("clerk", "/v1/applications", &tester).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["amount"], "600.00");
    // 6-18-02-04 (焊工) is a code of the classification: 中级 1500 yuan.
    let mut welder = skill.clone();
    welder["certificate"]["occupation_code"] = json!("6-18-02-04");
    let r = api.post("clerk", "/v1/applications", &welder).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["amount"], "1500.00");
}

/// 国办发明电〔2023〕7号: 国庆节 10月1日至7日放假调休，9月29日（星期日）、10月12日（星期六）上班.
/// A notice opened on Monday 2024-09-30 ends after the National Day week; objections received
/// on paper during the period are accepted when entered later, and not outside it.
#[tokio::test]
async fn a_notice_counts_the_state_councils_working_days_and_paper_objections() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut ids = Vec::new();
    for person in 0..3 {
        let (id, _) = submit_and_approve(&api, &common::training(person)).await;
        ids.push(id);
    }
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-09-30", "application_ids": ids}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // 9-30 is day 1; 10-01..07 are off; 10-08, 09, 10 and 11 are days 2 to 5.
    assert_eq!(r.json()["ends_on"], "2024-10-11", "{}", r.text);
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let shown = api.get("auditor", &format!("/v1/notices/{notice}")).await.json();
    assert_eq!(shown["calendar"], "state-council-holidays");

    let object = |app: &str, received_on: Option<&str>| {
        let mut b = json!({"application_id": app, "summary": "培训课时不足"});
        if let Some(d) = received_on {
            b["received_on"] = json!(d);
        }
        b
    };
    let path = format!("/v1/notices/{notice}/objections");
    let n = events(&api).await;
    // Received during the holiday week, inside the period, entered two years later.
    let r = api.post("clerk", &path, &object(&ids[0], Some("2024-10-05"))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api.post("clerk", &path, &object(&ids[1], Some("2024-10-11"))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let n = n + 2;
    assert_eq!(events(&api).await, n);
    // Before the period, after it, in the future, and (default) today: all after the period.
    for received_on in [Some("2024-09-29"), Some("2024-10-12"), Some("2099-01-01"), None] {
        let r = api.post("clerk", &path, &object(&ids[2], received_on)).await;
        assert_eq!((r.status, r.code().as_str()), (409, "objection_period_ended"), "{}", r.text);
        assert_eq!(r.json()["errors"][0]["field"], "received_on", "{}", r.text);
    }
    assert_eq!(events(&api).await, n);
    let shown = api.get("auditor", &format!("/v1/notices/{notice}")).await.json();
    let received: Vec<&str> = shown["objections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["received_on"].as_str().unwrap())
        .collect();
    assert_eq!(received, ["2024-10-05", "2024-10-11"]);
}

/// Every policy file and catalog under `policies/` is shipped inside the binary.
#[test]
fn every_policy_file_is_shipped_with_the_binary() {
    use fundledger::publishing::{SHIPPED_CATALOGS, SHIPPED_POLICIES};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let list = |d: &std::path::Path, prefix: &str| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .map(|n| format!("{prefix}{n}"))
            .collect();
        names.sort();
        names
    };
    let shipped = |s: &[(&str, &str)]| s.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
    assert_eq!(shipped(SHIPPED_POLICIES), list(&dir, ""));
    assert_eq!(shipped(SHIPPED_CATALOGS), list(&dir.join("catalogs"), "catalogs/"));
    for (name, text) in SHIPPED_POLICIES {
        assert_eq!(*text, std::fs::read_to_string(dir.join(name)).unwrap(), "{name}");
    }
}

/// API.md "A fresh ledger has the notices in force": on an empty log the shipped policies are
/// published by `system`, once; a benefit recipient's training is then decided on the first
/// request. `serve --no-default-policies` is accepted.
#[tokio::test]
async fn a_fresh_ledger_has_the_notices_in_force() {
    use fundledger::commands::applications::{submit, PersonApplication};
    use fundledger::commands::setup::{register_county, register_pool};
    use fundledger::personal::Keys;
    use fundledger::postgres::testing::TestDatabase;
    use fundledger::publishing::{publish_shipped_on_empty_log, SHIPPED_POLICIES};
    use policy::DivisionCode;

    let db = TestDatabase::new().await;
    let published = publish_shipped_on_empty_log(&db.pool).await.unwrap();
    assert_eq!(published.len(), SHIPPED_POLICIES.len(), "{published:?}");
    assert!(published.contains(&"state-council-holidays".to_string()));
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT metadata->>'actor' FROM events WHERE event_type = 'PolicyPublished'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(actors, ["system"]);
    // Not on a log that has events.
    assert!(publish_shipped_on_empty_log(&db.pool).await.unwrap().is_empty());

    let code = |c: &str| DivisionCode::parse(c).unwrap();
    register_pool(&db.pool, &code("371500"), "聊城市", "admin").await.unwrap();
    register_county(&db.pool, &code("371502"), "东昌府区", &code("371500"), "admin").await.unwrap();
    let mut body = training_2025(1, json!({"receiving_unemployment_benefit": true}));
    body.as_object_mut().unwrap().remove("program");
    let app = PersonApplication::Training(serde_json::from_value(body).unwrap());
    let today = chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    let s = submit(&db.pool, &Keys::generate(), &app, "clerk", today).await.unwrap();
    assert_eq!(s.decision.amount.value.to_string(), "600.00");

    use clap::Parser;
    let cli =
        fundledger::cli::Cli::try_parse_from(["fundledger", "serve", "--no-default-policies"]);
    assert!(cli.is_ok(), "{cli:?}");
}

/// `GET /v1/policies` (any authenticated role): the policies with the interpretations they
/// make, each naming its setting and quoting the sentence it reads.
#[tokio::test]
async fn the_policies_in_force_are_listed_with_their_interpretations() {
    let api = Api::start().await;
    assert_eq!(api.send("GET", "/v1/policies", None, &[], None).await.status, 401);
    for who in ["clerk", "reviewer", "finance", "auditor", "admin"] {
        assert_eq!(api.get(who, "/v1/policies").await.status, 200, "{who}");
    }
    let r = api.get("clerk", "/v1/policies?on=2025-06-01&in_force=true").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    let ids: Vec<&str> =
        body["policies"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"liaocheng-2024-training"), "{ids:?}");
    assert!(ids.contains(&"jining-2025-skill-upgrade"), "{ids:?}");
    assert!(!ids.contains(&"shandong-2024-expansion-quota"), "ended on 2024-12-31: {ids:?}");
    let training = body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "liaocheng-2024-training")
        .unwrap();
    let readings = training["interpretations"].as_array().unwrap();
    let funding = readings
        .iter()
        .find(|i| i["setting"] == "funding.receiving_unemployment_benefit")
        .unwrap_or_else(|| panic!("{training}"));
    assert!(funding["sentence"].as_str().unwrap().contains("领取失业保险金期间参加培训"));
    assert!(readings.iter().any(|i| i["setting"] == "hours_below_standard"));
    // The annex's codes as the notice writes them, 6 of them not the 2022 classification's.
    let codes =
        readings.iter().find(|i| i["setting"] == "catalog").unwrap_or_else(|| panic!("{training}"));
    assert!(codes["reading"].as_str().unwrap().contains("6-08-01-01"), "{codes}");
    let jining = api.get("auditor", "/v1/policies").await.json();
    let jining = jining["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "jining-2025-skill-upgrade")
        .cloned()
        .unwrap();
    assert!(jining["effective_until"].is_null(), "open-ended: {jining}");
    for setting in ["effective_from", "amounts", "exclusion", "certificate.window_end"] {
        assert!(
            jining["interpretations"].as_array().unwrap().iter().any(|i| i["setting"] == setting),
            "{setting}: {jining}"
        );
    }
}

/// `fundledger serve` itself, on an empty log: it publishes the shipped policies as `system`
/// before answering; with `--no-default-policies` it publishes nothing.
#[tokio::test]
async fn serve_publishes_the_shipped_policies_on_an_empty_log_unless_told_not_to() {
    use fundledger::postgres::testing::TestDatabase;
    use fundledger::publishing::SHIPPED_POLICIES;
    use std::process::{Command, Stdio};

    for no_default in [false, true] {
        let db = TestDatabase::new().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data_dir = std::env::temp_dir()
            .join(format!("fundledger-notices-serve-{}", uuid::Uuid::new_v4().simple()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_fundledger"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--checkpoint-every", "0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--key-dir")
            .arg(data_dir.join("keys"))
            .env("DATABASE_URL", fundledger::postgres::testing::url_of(&db.name))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if no_default {
            command.arg("--no-default-policies");
        }
        let mut child = command.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(child.try_wait().unwrap().is_none(), "serve exited early");
            let up = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok();
            if up {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "serve did not listen within 60 s");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let published: Vec<(String, String)> = sqlx::query_as(
            "SELECT stream_id, metadata->>'actor' FROM events WHERE event_type = 'PolicyPublished'",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert!(child.wait().unwrap().success());
        let _ = std::fs::remove_dir_all(&data_dir);
        if no_default {
            assert!(published.is_empty(), "{published:?}");
        } else {
            assert_eq!(published.len(), SHIPPED_POLICIES.len(), "{published:?}");
            assert!(published.iter().all(|(_, actor)| actor == "system"), "{published:?}");
            assert!(published.iter().any(|(s, _)| s == "policy-state-council-holidays"));
        }
    }
}
