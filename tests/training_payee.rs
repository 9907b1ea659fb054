//! A vocational-training subsidy paid to the training institution on the trainee's behalf
//! (聊人社字〔2024〕12号): the notice lists the trainee, masked; the payout's payee is the
//! institution.

mod common;

use common::{set_up, training, Api};
use serde_json::json;

const SCHOOL: &str = "91370800MA3C1234XP";

#[tokio::test]
async fn the_notice_lists_the_trainee_and_the_payout_pays_the_institution() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut body = training(41);
    body["payee"] = json!({"credit_code": SCHOOL, "name": "聊城市某职业培训学校"});
    let r = api.post("clerk", "/v1/applications", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // 急需紧缺 初级, 40 hours: 600 (聊人社字〔2024〕12号 annex 2).
    assert_eq!(r.json()["amount"], "600.00");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let line =
        api.get("auditor", &format!("/v1/notices/{notice}")).await.json()["lines"][0].clone();
    assert_eq!(line["name"], "王*五", "{line}");
    assert!(line["id_number"].as_str().unwrap().contains("********"), "{line}");
    assert_eq!(
        api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await.status,
        200
    );

    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let payout = &r.json()["payouts"][0];
    assert_eq!(payout["payee"], json!({"credit_code": SCHOOL, "name": "聊城市某职业培训学校"}));
    assert_eq!(payout["amount"], "600.00");

    // Without a payee, the trainee is paid, shown masked.
    let r = api.post("clerk", "/v1/applications", &training(42)).await;
    let other = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.post(
            "reviewer",
            &format!("/v1/applications/{other}/review"),
            &json!({"decision": "approve"})
        )
        .await
        .status,
        200
    );
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [other]}),
        )
        .await;
    let notice = r.json()["id"].as_str().unwrap().to_string();
    api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    let r = api
        .post(
            "finance",
            "/v1/payouts",
            &json!({"application_ids": [other], "paid_on": "2024-11-12"}),
        )
        .await;
    let payee = &r.json()["payouts"][0]["payee"];
    assert_eq!(payee["name"], "王*五", "{}", r.text);
    assert!(payee.get("credit_code").is_none());
}
