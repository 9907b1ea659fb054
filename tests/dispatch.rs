//! Labour-dispatch refunds (劳务派遣, 鲁人社发〔2024〕8号 item 3) are paid per payee: the part
//! for workers dispatched to a host employer goes in full to that host ("全额拨付给…用工单位"),
//! the part for the company's own staff to the company, and nothing for workers dispatched to
//! government bodies or public institutions. `POST /v1/payouts` makes one payout per line.

mod common;

use std::collections::BTreeMap;

use common::{set_up, Api};
use serde_json::{json, Value};

/// The dispatch company, and its hosts: an enterprise and a public institution (事业单位).
/// Valid unified social credit codes (GB 32100).
const COMPANY: &str = "91370800MA3C1234XP";
const HOST: &str = "91371500MA3C7777X1";
const HOSPITAL: &str = "12371500MB28555666";

fn codes() -> (String, String, String) {
    (COMPANY.to_string(), HOST.to_string(), HOSPITAL.to_string())
}

/// 100 insured: 20 own staff (premiums 24000.00), 50 dispatched to an enterprise (60000.00),
/// 30 to a public hospital (36000.00); 2 laid off (2% ≤ 5.5%), a small or medium company:
/// 60%.
fn dispatch_refund() -> Value {
    let (company, host, hospital) = codes();
    json!({
        "program": "job_stabilization_refund", "county": "371502", "submitted_on": "2024-08-01",
        "enterprise": {"credit_code": company, "name": "聊城某劳务派遣有限公司", "size": "sme",
                       "kind": "enterprise", "labour_dispatch": true},
        "premiums": {"paid_last_year": "120000.00", "months_paid_in_full": 14},
        "staff": {"insured_employees": 100, "laid_off_last_year": 2},
        "dispatch": {
            "own_staff": {"employees": 20, "premiums_paid_last_year": "24000.00"},
            "hosts": [
                {"credit_code": host, "name": "聊城某机械有限公司", "kind": "enterprise",
                 "dispatched_workers": 50, "premiums_paid_last_year": "60000.00"},
                {"credit_code": hospital, "name": "聊城市某医院", "kind": "public_institution",
                 "dispatched_workers": 30, "premiums_paid_last_year": "36000.00"}
            ]
        }
    })
}

/// Submitted, approved, noticed and cleared: `(application, notice)`.
async fn cleared(api: &Api) -> (String, String) {
    set_up(api).await;
    let r = api.post("clerk", "/v1/applications", &dispatch_refund()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // 60% of own staff's 24000.00 and of the enterprise host's 60000.00; the hospital's
    // 36000.00 is outside the refund: 50400.00, not 60% of 120000.00.
    assert_eq!(r.json()["amount"], "50400.00", "{}", r.text);
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
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (id, notice)
}

fn pay(id: &str) -> Value {
    json!({"application_ids": [id], "paid_on": "2024-11-12"})
}

#[tokio::test]
async fn each_host_employer_and_the_company_get_their_own_payout_and_public_bodies_nothing() {
    let api = Api::start().await;
    let (id, notice) = cleared(&api).await;
    let (company, host, hospital) = codes();

    // The notice shows the parts, the hospital's at zero.
    let line =
        api.get("auditor", &format!("/v1/notices/{notice}")).await.json()["lines"][0].clone();
    assert_eq!(line["amount"], "50400.00", "{line}");
    let parts: BTreeMap<String, String> = line["payees"]
        .as_array()
        .unwrap_or_else(|| panic!("the notice shows the lines: {line}"))
        .iter()
        .map(|p| (p["credit_code"].as_str().unwrap().into(), p["amount"].as_str().unwrap().into()))
        .collect();
    let expected: BTreeMap<String, String> = [
        (host.clone(), "36000.00".into()),
        (hospital.clone(), "0.00".into()),
        (company.clone(), "14400.00".into()),
    ]
    .into();
    assert_eq!(parts, expected);
    // The printable notice (看板) lists the parts under the company's line.
    let page = api.get("auditor", &format!("/notices/{notice}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("其中：聊城某机械有限公司"), "{}", page.text);
    assert!(page.text.contains("36000.00") && page.text.contains("14400.00"), "{}", page.text);

    let r = api.post("finance", "/v1/payouts", &pay(&id)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let payouts = r.json()["payouts"].as_array().unwrap().clone();
    let paid: BTreeMap<String, String> = payouts
        .iter()
        .map(|p| {
            assert_eq!(p["application"], id.as_str());
            assert_eq!(p["status"], "issued");
            assert_eq!(p["paid_on"], "2024-11-12");
            (
                p["payee"]["credit_code"].as_str().unwrap().to_string(),
                p["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // One payout per payee with money; the public hospital gets nothing, not even a line of
    // zero; the company is not paid its hosts' share (截留).
    let expected: BTreeMap<String, String> =
        [(host.clone(), "36000.00".into()), (company.clone(), "14400.00".into())].into();
    assert_eq!(paid, expected, "{}", r.text);
    assert_eq!(payouts.len(), 2);
    let host_payout = payouts.iter().find(|p| p["payee"]["credit_code"] == host.as_str()).unwrap();
    assert_eq!(host_payout["payee"]["name"], "聊城某机械有限公司");
    let own = payouts.iter().find(|p| p["payee"]["credit_code"] == company.as_str()).unwrap();
    let (host_payout, own) =
        (host_payout["id"].as_str().unwrap().to_string(), own["id"].as_str().unwrap().to_string());

    // The books hold each payout to its payee, and the sum is the decision's.
    let rows: Vec<(String, Option<String>, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT payout, payee_credit_code, amount FROM payouts WHERE application = $1",
    )
    .bind(&id)
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().map(|r| r.2).sum::<rust_decimal::Decimal>().to_string(), "50400.00");
    assert!(rows.iter().all(|r| r.1.is_some()));
    let r = api.get("auditor", &format!("/v1/payouts/{host_payout}")).await;
    assert_eq!(r.json()["payee"]["credit_code"], host.as_str(), "{}", r.text);
    let spent: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT sum(paid) FROM spending WHERE program = 'job_stabilization_refund'",
    )
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(spent.to_string(), "50400.00");

    // Paying again is refused: no line is paid twice.
    let r = api.post("finance", "/v1/payouts", &pay(&id)).await;
    assert_eq!((r.status, r.code()), (409, "already_paid".to_string()), "{}", r.text);

    // Each payout is settled, fails and is reissued on its own.
    let settle = json!({"status": "settled", "bank_reference": "B-HOST"});
    let r = api.post("finance", &format!("/v1/payouts/{host_payout}/settlement"), &settle).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status(&api, &id).await, "payout_issued", "one payout of two settled");
    let fail = json!({"status": "failed", "reason": "账户已销户"});
    let r = api.post("finance", &format!("/v1/payouts/{own}/settlement"), &fail).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status(&api, &id).await, "payout_failed");
    // The settled payout cannot be reissued; the failed one can, once.
    let reissue = json!({"account": {"bank": "中国农业银行聊城分行", "number": "6228480012345678"},
                         "paid_on": "2024-11-20"});
    let r = api.post("finance", &format!("/v1/payouts/{host_payout}/reissue"), &reissue).await;
    assert_eq!((r.status, r.code()), (409, "payout_not_failed".to_string()), "{}", r.text);
    let r = api.post("finance", &format!("/v1/payouts/{own}/reissue"), &reissue).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let again = r.json()["id"].as_str().unwrap().to_string();
    let r = api.post("finance", &format!("/v1/payouts/{own}/reissue"), &reissue).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let reissued = api.get("auditor", &format!("/v1/payouts/{again}")).await.json();
    assert_eq!(reissued["amount"], "14400.00");
    assert_eq!(reissued["payee"]["credit_code"], company.as_str(), "{reissued}");
    assert_eq!(status(&api, &id).await, "payout_issued");
    let settle = json!({"status": "settled", "bank_reference": "B-OWN"});
    let r = api.post("finance", &format!("/v1/payouts/{again}/settlement"), &settle).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status(&api, &id).await, "settled");
}

/// Eight finance clerks pay the same application at once, each with its own Idempotency-Key:
/// exactly one request pays, and each line is paid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payouts_of_one_application_never_pay_a_line_twice() {
    const REQUESTS: usize = 8;
    let api = std::sync::Arc::new(Api::start().await);
    let (id, _) = cleared(&api).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (api, barrier, id) = (api.clone(), barrier.clone(), id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                api.post("finance", "/v1/payouts", &pay(&id)).await
            })
        })
        .collect();
    let mut paid = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => paid += 1,
            _ => assert_eq!((r.status, r.code()), (409, "already_paid".to_string()), "{}", r.text),
        }
    }
    assert_eq!(paid, 1);
    let lines: Vec<(Option<i64>, i64)> = sqlx::query_as(
        "SELECT (data->>'line')::bigint, count(*) FROM events
          WHERE event_type = 'PayoutIssued' AND data->>'application' = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(&id)
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    // Line 0 is the enterprise host, 1 the hospital (nothing to pay), 2 the company's own.
    assert_eq!(lines, vec![(Some(0), 1), (Some(2), 1)]);
}

async fn status(api: &Api, id: &str) -> String {
    let r = api.get("auditor", &format!("/v1/applications/{id}")).await;
    r.json()["status"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_string()
}
