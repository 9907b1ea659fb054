//! Replay from the log alone: at the head it equals the inline read models; as of a past
//! moment it equals what the API showed at that moment (snapshots taken along the way).

mod common;

use common::{set_up, training, Api};
use fundledger::replay::{replay, AsOf};
use serde_json::{json, Value};

async fn approve(api: &Api, person: u32) -> String {
    let id = api.post("clerk", "/v1/applications", &training(person)).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

fn figures(q: &Value) -> Value {
    json!([q["cap"], q["committed"], q["paid"], q["recovered"], q["remaining"]])
}

/// The quota now, and the moment just after it (everything shown was recorded before it).
async fn snapshot(api: &Api) -> (Value, chrono::DateTime<chrono::Utc>) {
    let q = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let at = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    (q, at)
}

#[tokio::test]
async fn replay_as_of_past_moments_matches_what_was_shown_then_and_at_the_head_equals_live() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut snapshots = vec![snapshot(&api).await];
    let first: Vec<String> = futures_util::future::join_all((0..3).map(|p| approve(&api, p))).await;
    snapshots.push(snapshot(&api).await);
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": first}),
        )
        .await;
    let notice = r.json()["id"].as_str().unwrap().to_string();
    api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": first, "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let issued = r.json()["payouts"].clone();
    let payout =
        issued.as_array().unwrap().iter().find(|p| p["application"] == first[0].as_str()).unwrap()
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let settled = json!({"status": "settled", "bank_reference": "B"});
    let r = api.post("finance", &format!("/v1/payouts/{payout}/settlement"), &settled).await;
    assert_eq!(r.status, 200, "{}", r.text);
    snapshots.push(snapshot(&api).await);
    let r = api
        .post(
            "finance",
            &format!("/v1/applications/{}/recoveries", first[0]),
            &json!({"amount": "600.00", "reason": "追回"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    approve(&api, 10).await;
    snapshots.push(snapshot(&api).await);

    let distinct: std::collections::BTreeSet<String> =
        snapshots.iter().map(|(q, _)| figures(q).to_string()).collect();
    assert_eq!(distinct.len(), snapshots.len(), "each phase changed the quota");
    for (shown, at) in &snapshots {
        let r = api
            .get(
                "auditor",
                &format!(
                    "/v1/pools/371500/quotas/2024?as_of={}",
                    at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(figures(&r.json()), figures(shown), "as of {at}");
    }
    let r = api.get("auditor", "/v1/pools/371500/quotas/2024?as_of=2024-13-01").await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"));

    // At the head: the pure fold of the whole log equals the stored read models.
    let mut conn = api.db.pool.acquire().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.unwrap();
    while fundledger::store::sequence(&mut conn).await.unwrap().map(|p| p.0) != Some(total) {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let head = replay(&mut conn, AsOf::Head, |_| {}).await.unwrap();
    assert_eq!(head.position, total);
    let live = fundledger::read_models::all_quotas(&mut conn).await.unwrap();
    let q = head.models.pools.quota("371500", 2024).unwrap();
    assert_eq!(
        (live[0].cap, live[0].committed, live[0].paid, live[0].recovered),
        (q.cap, q.committed, q.paid, q.recovered)
    );
    assert_eq!(
        head.models.spending.rows(),
        fundledger::read_models::all_spending(&mut conn).await.unwrap()
    );
    // As of a position: a prefix.
    let early = replay(&mut conn, AsOf::Position(3), |_| {}).await.unwrap();
    assert_eq!(early.position, 3);
}
