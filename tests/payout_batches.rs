//! Payout batches over HTTP, as a payroll moves through the bank: issued by `POST /v1/payouts`,
//! sent, answered by the bank's file, reconciled; every step out of order refused with the
//! rule's code, and the state shown on the batch and on each of its payouts.

mod common;

use common::{events, raw, set_up, training, Api, Reply};
use serde_json::{json, Value};

async fn cleared(api: &Api, persons: std::ops::Range<u32>) -> Vec<String> {
    let mut ids = Vec::new();
    for p in persons {
        let r = api.post("clerk", "/v1/applications", &training(p)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let path = format!("/v1/applications/{id}/review");
        let r = api.post("reviewer", &path, &json!({"decision": "approve"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(id);
    }
    let body = json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": ids});
    let r = api.post("clerk", "/v1/notices", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    ids
}

async fn import(api: &Api, key: &str, file: &str) -> Reply {
    let mut request = format!(
        "POST /v1/settlements/import HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         authorization: Bearer {}\r\ncontent-type: text/csv\r\nidempotency-key: {key}\r\n\
         content-length: {}\r\n\r\n",
        api.tokens["finance"],
        file.len()
    )
    .into_bytes();
    request.extend_from_slice(file.as_bytes());
    raw(api.addr, &request).await
}

fn refused(r: &Reply, code: &str) {
    assert_eq!((r.status, r.code().as_str()), (409, code), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "status", "{}", r.text);
}

async fn batch(api: &Api, id: &str) -> Value {
    let r = api.get("finance", &format!("/v1/payouts/batches/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn a_batch_is_issued_sent_answered_and_reconciled_and_refuses_each_step_out_of_order() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 0..3).await;
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": ids, "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let answer = r.json();
    let id = answer["batches"][0].as_str().unwrap().to_string();
    assert_eq!(answer["batches"].as_array().unwrap().len(), 1);
    let payouts: Vec<String> = answer["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["batch"], id.as_str());
            p["id"].as_str().unwrap().to_string()
        })
        .collect();

    // Issued: the batch and each payout say so; it cannot be closed before it was sent.
    let b = batch(&api, &id).await;
    assert_eq!(
        (b["status"].as_str(), b["status_label"].as_str(), b["amount"].as_str()),
        (Some("issued"), Some("已生成"), Some("1800.00"))
    );
    assert_eq!((b["payouts"].as_u64(), b["pending"].as_u64()), (Some(3), Some(3)));
    let p = api.get("finance", &format!("/v1/payouts/{}", payouts[0])).await.json();
    assert_eq!(
        (p["batch"].as_str(), p["batch_status"].as_str()),
        (Some(id.as_str()), Some("issued"))
    );
    let reconciled = format!("/v1/payouts/batches/{id}/reconciled");
    let before = events(&api).await;
    refused(&api.post("finance", &reconciled, &json!({})).await, "batch_not_sent");
    assert_eq!(events(&api).await, before, "a refusal records nothing");

    // Sent, once.
    let sent = format!("/v1/payouts/batches/{id}/sent");
    let r = api.post("finance", &sent, &json!({"sent_on": "2024-11-12"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json()["status"].as_str(), r.json()["sent_on"].as_str()),
        (Some("sent"), Some("2024-11-12"))
    );
    refused(&api.post("finance", &sent, &json!({})).await, "batch_already_sent");
    let r = api.post("finance", &sent, &json!({"sent_on": "2024-11-11"})).await;
    assert_eq!(r.status, 409, "a second send is refused before its date is looked at: {}", r.text);

    // The bank answers two of three: not closed yet, and not closable.
    let file = format!(
        "payout_id,amount,status,settled_on,bank_reference,reason\n\
         {},600.00,settled,2024-11-13,B-1,\n{},600.00,failed,2024-11-14,,账户已销户\n",
        payouts[0], payouts[1]
    );
    let r = import(&api, "part", &file).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["reconciled_batches"], json!([]), "{}", r.text);
    assert_eq!(r.json()["matched"][0]["batch"], id.as_str());
    let b = batch(&api, &id).await;
    assert_eq!((b["status"].as_str(), b["pending"].as_u64()), (Some("sent"), Some(1)));
    refused(&api.post("finance", &reconciled, &json!({})).await, "batch_not_answered");

    // The last answer: the import closes the batch with its figures.
    let file = format!(
        "payout_id,amount,status,settled_on,bank_reference,reason\n{},600.00,settled,2024-11-15,B-3,\n",
        payouts[2]
    );
    let r = import(&api, "rest", &file).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["reconciled_batches"],
        json!([{"batch": id, "settled": 2, "settled_amount": "1200.00", "failed": 1, "failed_amount": "600.00"}])
    );
    let b = batch(&api, &id).await;
    assert_eq!(
        (
            b["status"].as_str(),
            b["status_label"].as_str(),
            b["settled"].as_u64(),
            b["failed"].as_u64()
        ),
        (Some("reconciled"), Some("已对账"), Some(2), Some(1))
    );
    let p = api.get("auditor", &format!("/v1/payouts/{}", payouts[1])).await.json();
    assert_eq!(
        (p["status"].as_str(), p["batch_status"].as_str()),
        (Some("failed"), Some("reconciled"))
    );
    refused(&api.post("finance", &reconciled, &json!({})).await, "batch_already_reconciled");
    refused(&api.post("finance", &sent, &json!({})).await, "batch_already_sent");

    // A reissue is paid on its own, outside the batch.
    let body = json!({"account": {"bank": "中国农业银行聊城分行", "number": "6228480000000000001"}, "paid_on": "2024-11-20"});
    let r = api.post("finance", &format!("/v1/payouts/{}/reissue", payouts[1]), &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let p = api
        .get("finance", &format!("/v1/payouts/{}", r.json()["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!((p["batch"].clone(), p["batch_status"].clone()), (Value::Null, Value::Null));

    // Another pool's bureau, a county clerk: refused; an unknown batch: 403 to a scoped
    // caller, 404 to an auditor.
    assert_eq!(api.get("finance_jining", &format!("/v1/payouts/batches/{id}")).await.status, 403);
    assert_eq!(api.post("finance_jining", &sent, &json!({})).await.status, 403);
    assert_eq!(api.get("clerk", &format!("/v1/payouts/batches/{id}")).await.status, 403);
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(api.get("finance", &format!("/v1/payouts/batches/{unknown}")).await.status, 403);
    assert_eq!(api.get("auditor", &format!("/v1/payouts/batches/{unknown}")).await.status, 404);
}

#[tokio::test]
async fn a_batch_answered_by_hand_is_closed_by_its_route_and_two_sends_record_one() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 10..12).await;
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": ids, "paid_on": "2024-11-12"}))
        .await;
    let answer = r.json();
    let id = answer["batches"][0].as_str().unwrap().to_string();
    let sent = format!("/v1/payouts/batches/{id}/sent");
    // Two clerks send at once: one is recorded, the other refused.
    let body = json!({"sent_on": "2024-11-12"});
    let (a, b) = tokio::join!(api.post("finance", &sent, &body), api.post("finance", &sent, &body));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text, b.text);
    let sends: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PayoutBatchSent'")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(sends, 1);
    for p in answer["payouts"].as_array().unwrap() {
        let path = format!("/v1/payouts/{}/settlement", p["id"].as_str().unwrap());
        let r =
            api.post("finance", &path, &json!({"status": "settled", "bank_reference": "B"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(batch(&api, &id).await["status"], "answered");
    let r = api.post("finance", &format!("/v1/payouts/batches/{id}/reconciled"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json()["settled"].as_u64(), r.json()["settled_amount"].as_str()),
        (Some(2), Some("1200.00"))
    );
    assert_eq!(batch(&api, &id).await["status"], "reconciled");
}
