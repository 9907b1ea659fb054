//! 免申即享 (鲁人社发〔2024〕8号 item 7): the office screens enterprises by data comparison,
//! the enterprise confirms, then review, notice, payout. Review of an unconfirmed screened
//! refund is refused (`not_confirmed`); a small or micro enterprise without a corporate account
//! is paid to the account it pays social insurance from, a medium one without is refused.

mod common;

use common::{events, set_up, Api};
use serde_json::{json, Value};

fn screened(code: &str) -> Value {
    json!({
        "program": "job_stabilization_refund", "county": "371502", "submitted_on": "2024-08-01",
        "screened": true,
        "enterprise": {"credit_code": code, "name": "聊城某小微企业", "size": "sme",
                       "kind": "enterprise", "labour_dispatch": false},
        "premiums": {"paid_last_year": "20000.00", "months_paid_in_full": 14},
        "staff": {"insured_employees": 12, "laid_off_last_year": 0}
    })
}

fn confirmation(size_class: &str, corporate_account: bool) -> Value {
    json!({"confirmed_by": "张经理", "confirmed_on": "2024-08-05", "size_class": size_class,
           "corporate_account": corporate_account})
}

#[tokio::test]
async fn a_screened_refund_is_reviewed_only_once_the_enterprise_confirms() {
    let api = Api::start().await;
    set_up(&api).await;
    let r = api.post("clerk", "/v1/applications", &screened("91370800MA3C1234XP")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // 60% of 20000.00.
    assert_eq!(r.json()["amount"], "12000.00");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let app = api.get("auditor", &format!("/v1/applications/{id}")).await.json();
    assert_eq!(app["confirmation"], json!({"status": "screened"}), "{app}");

    // Not confirmed: review refused, naming the rule; nothing recorded.
    let before = events(&api).await;
    let review = json!({"decision": "approve"});
    let r = api.post("reviewer", &format!("/v1/applications/{id}/review"), &review).await;
    assert_eq!((r.status, r.code()), (409, "not_confirmed".to_string()), "{}", r.text);
    assert!(r.text.contains("鲁人社发〔2024〕8号 七"), "{}", r.text);
    assert_eq!(events(&api).await, before);

    // A medium enterprise without a corporate account cannot be paid elsewhere.
    let path = format!("/v1/applications/{id}/confirmation");
    let r = api.post("clerk", &path, &confirmation("medium", false)).await;
    assert_eq!((r.status, r.code()), (422, "not_eligible".to_string()), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "corporate_account", "{}", r.text);
    assert_eq!(events(&api).await, before);

    // A small one is paid to the account it pays social insurance from.
    let r = api.post("clerk", &path, &confirmation("small", false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["confirmation"],
        json!({"status": "confirmed", "confirmed_by": "张经理", "confirmed_on": "2024-08-05",
               "paid_to": "social_insurance"})
    );
    // Once.
    let r = api.post("clerk", &path, &confirmation("small", true)).await;
    assert_eq!((r.status, r.code()), (409, "invalid_state".to_string()), "{}", r.text);

    let r = api.post("reviewer", &format!("/v1/applications/{id}/review"), &review).await;
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
    assert_eq!(
        api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await.status,
        200
    );
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["payouts"][0]["amount"], "12000.00");
    let types: Vec<String> = api.get("auditor", &format!("/v1/applications/{id}")).await.json()
        ["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        &types[..3],
        ["ApplicationSubmitted", "ApplicationConfirmed", "ApplicationApproved"]
    );
}

#[tokio::test]
async fn an_applied_refund_needs_no_confirmation_and_cannot_be_confirmed() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut body = screened("91370800MA3C1234XP");
    body.as_object_mut().unwrap().remove("screened");
    let r = api.post("clerk", "/v1/applications", &body).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/applications/{id}/confirmation");
    let r = api.post("clerk", &path, &confirmation("small", true)).await;
    assert_eq!((r.status, r.code()), (409, "invalid_state".to_string()), "{}", r.text);
    let review = json!({"decision": "approve"});
    let r = api.post("reviewer", &format!("/v1/applications/{id}/review"), &review).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
