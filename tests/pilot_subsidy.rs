//! The other expansion-pilot subsidies (职业技能评价补贴, 岗位补贴, 社会保险补贴,
//! 鲁人社发〔2024〕8号 item 六) over HTTP against real PostgreSQL: entered amounts with their
//! basis, always expansion-pilot money, counted against the 15% cap at review, noticed and
//! paid like the others; refused in 2025, when no pilot is in force.

mod common;

use common::{events, id_number, set_up, Api};
use serde_json::{json, Value};

const UNIT: &str = "91370800MA3C1234XP";

fn job_subsidy(amount: &str) -> Value {
    json!({
        "program": "pilot_subsidy", "category": "job", "county": "371502",
        "submitted_on": "2024-09-02",
        "beneficiary": {"credit_code": UNIT, "name": "聊城某餐饮有限公司"},
        "amount": amount, "basis": "聊城市岗位补贴核定表 2024-017"
    })
}

async fn approve(api: &Api, id: &str) -> common::Reply {
    api.post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await
}

async fn quota(api: &Api) -> Value {
    api.get("finance", "/v1/pools/371500/quotas/2024").await.json()
}

#[tokio::test]
async fn a_job_subsidy_counts_against_the_cap_and_is_noticed_and_paid() {
    let api = Api::start().await;
    set_up(&api).await; // Liaocheng: balance 100000.00, 2024 cap 15000.00

    let r = api.post("clerk", "/v1/applications", &job_subsidy("2400.00")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let submitted = r.json();
    assert_eq!(submitted["amount"], "2400.00");
    assert_eq!(submitted["funding"], "expansion_pilot");
    assert_eq!(submitted["policy"]["document"], "鲁人社发〔2024〕8号");
    let id = submitted["id"].as_str().unwrap().to_string();

    let r = approve(&api, &id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(quota(&api).await["committed"], "2400.00");

    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let r = api.get("auditor", &format!("/v1/notices/{notice}")).await;
    let line = &r.json()["lines"][0];
    assert_eq!(
        (line["program"].as_str(), line["amount"].as_str()),
        (Some("pilot_subsidy"), Some("2400.00"))
    );
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let payout = &r.json()["payouts"][0];
    assert_eq!(payout["amount"], "2400.00");
    assert_eq!(payout["payee"], json!({"credit_code": UNIT, "name": "聊城某餐饮有限公司"}));
    let q = quota(&api).await;
    assert_eq!((q["committed"].as_str(), q["paid"].as_str()), (Some("0.00"), Some("2400.00")));

    // 2400.00 + 12600.00 = 15000.00: the cap is inclusive (15%（含）).
    let r = api.post("clerk", "/v1/applications", &job_subsidy("12600.00")).await;
    let second = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(approve(&api, &second).await.status, 200);
    // One fen more is refused at review, and nothing is recorded.
    let r = api.post("clerk", "/v1/applications", &job_subsidy("0.01")).await;
    let third = r.json()["id"].as_str().unwrap().to_string();
    let before = events(&api).await;
    let r = approve(&api, &third).await;
    assert_eq!((r.status, r.code().as_str()), (409, "quota_exceeded"), "{}", r.text);
    assert_eq!(events(&api).await, before);
    assert_eq!(quota(&api).await["remaining"], "0.00");
}

#[tokio::test]
async fn a_skill_evaluation_subsidy_to_a_person_keeps_the_id_number_sealed() {
    let api = Api::start().await;
    set_up(&api).await;
    let person = id_number("371502", 7);
    let body = json!({
        "program": "pilot_subsidy", "category": "skill_evaluation", "county": "371502",
        "submitted_on": "2024-09-02",
        "beneficiary": {"id_number": person, "name": "李四"},
        "amount": "300.00", "basis": "鲁人社发〔2024〕8号 六; 评价机构收费单 0042"
    });
    let r = api.post("clerk", "/v1/applications", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM events").fetch_all(&api.db.pool).await.unwrap();
    assert!(stored.iter().all(|d| !d.contains(&person)), "the ID number is never in clear");
    let r = api.get("clerk", &format!("/v1/applications/{id}")).await;
    assert_eq!(r.json()["applicant"]["name"], "李*");
    assert_eq!(approve(&api, &id).await.status, 200);
    assert_eq!(quota(&api).await["committed"], "300.00");
}

#[tokio::test]
async fn pilot_subsidies_are_refused_in_2025_and_bad_bodies_name_their_field() {
    let api = Api::start().await;
    set_up(&api).await;
    let before = events(&api).await;

    // The pilot's policy ends on 2024-12-31 (政策执行期限至2024年12月31日).
    let mut late = job_subsidy("2400.00");
    late["submitted_on"] = json!("2025-01-02");
    let r = api.post("clerk", "/v1/applications", &late).await;
    assert_eq!((r.status, r.code().as_str()), (422, "no_policy_in_force"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "submitted_on");

    let cases: [(&str, Value, &str); 4] = [
        ("basis", json!(" "), "basis"),
        ("amount", json!("2400.001"), "amount"),
        ("category", json!("housing"), "category"),
        (
            "beneficiary",
            json!({"credit_code": UNIT, "id_number": id_number("371502", 1), "name": "x"}),
            "beneficiary",
        ),
    ];
    for (key, value, field) in cases {
        let mut body = job_subsidy("2400.00");
        body[key] = value;
        let r = api.post("clerk", "/v1/applications", &body).await;
        assert_eq!(r.status, 422, "{key}: {}", r.text);
        assert_eq!(r.code(), "validation_failed", "{key}");
        assert_eq!(r.json()["errors"][0]["field"], field, "{key}: {}", r.text);
    }
    assert_eq!(events(&api).await, before);
}
