//! Replay from the log alone: at the head it equals the inline read models; as of a past
//! moment it equals what the API showed at that moment (snapshots taken along the way).

mod common;

use common::{set_up, training, Api};
use fundledger::replay::{replay, replay_of, AsOf};
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
    // Pages of 3 (read ahead while the one before is folded) give the same models at the head
    // and as of a position inside a page, and report each page's end.
    let mut reported = Vec::new();
    let paged = fundledger::replay::replay_in_pages(&mut conn, AsOf::Head, 3, |p| reported.push(p))
        .await
        .unwrap();
    assert_eq!(paged.position, total);
    assert!(paged.models == head.models, "pages of 3 folded differently");
    assert_eq!(reported.first(), Some(&3));
    assert!(reported.windows(2).all(|w| w[1] - w[0] <= 3 && w[1] > w[0]), "{reported:?}");
    let inside = total - 4;
    let paged = fundledger::replay::replay_in_pages(&mut conn, AsOf::Position(inside), 3, |_| {})
        .await
        .unwrap();
    let whole = replay(&mut conn, AsOf::Position(inside), |_| {}).await.unwrap();
    assert_eq!(paged.position, inside);
    assert!(paged.models == whole.models, "pages of 3 folded differently as of {inside}");

    // As of a time inside the log: the fold stops at the first event recorded after it, in
    // the middle of the one COPY the replay reads; the rest is read and dropped, and the
    // connection goes on serving statements.
    let times: Vec<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT l.position, e.recorded_at FROM log l JOIN events e ON e.id = l.event_id
          ORDER BY l.position",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    // The last event recorded at its time, with later events after it: the cut falls there.
    let (cut, at) = times
        .windows(2)
        .rev()
        .find(|w| w[1].1 > w[0].1 && w[0].0 > 3)
        .map(|w| w[0])
        .expect("events recorded at different times");
    assert!(cut < total, "the cut is inside the log");
    for batch in [3, 10_000] {
        let by_time = fundledger::replay::replay_in_pages(&mut conn, AsOf::Time(at), batch, |_| {})
            .await
            .unwrap();
        assert_eq!(by_time.position, cut, "as of {at}, batches of {batch}");
        let by_position = replay(&mut conn, AsOf::Position(cut), |_| {}).await.unwrap();
        assert!(by_time.models == by_position.models, "as of {at} and as of position {cut}");
    }
    let still: i64 = sqlx::query_scalar("SELECT 1::bigint").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(still, 1);
}

/// `?as_of=` folds only the pool's events (its stream and its year's quota tag): on a random
/// history of approvals, withdrawals, rejections, submissions that hold no money and events of
/// another pool, that fold equals the fold of the whole log at every position, and reads only
/// the pool's rows.
#[tokio::test]
async fn the_quota_as_of_any_position_folds_only_the_pools_events_and_equals_the_full_replay() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let api = Api::start().await;
    set_up(&api).await;
    let (mut submitted, mut approved) = (Vec::new(), Vec::new());
    for person in 0..24u32 {
        match rng.gen_range(0..5) {
            0 | 1 => approved.push(approve(&api, person).await),
            2 => {
                let r = api.post("clerk", "/v1/applications", &training(person)).await;
                assert_eq!(r.status, 201, "seed {seed}: {}", r.text);
                submitted.push(r.json()["id"].as_str().unwrap().to_string());
            }
            3 if !approved.is_empty() => {
                let id = approved.swap_remove(rng.gen_range(0..approved.len()));
                let r = api
                    .post(
                        "clerk",
                        &format!("/v1/applications/{id}/withdraw"),
                        &json!({"reason": "撤回"}),
                    )
                    .await;
                assert_eq!(r.status, 200, "seed {seed}: {}", r.text);
            }
            3 | 4 if !submitted.is_empty() => {
                let id = submitted.swap_remove(rng.gen_range(0..submitted.len()));
                let body = json!({"decision": "reject", "reasons": ["材料不全"]});
                let r = api.post("reviewer", &format!("/v1/applications/{id}/review"), &body).await;
                assert_eq!(r.status, 200, "seed {seed}: {}", r.text);
            }
            _ => {
                // Another pool's event: not this quota's.
                let body = json!({"code": format!("37{:04}", 1000 + person), "name": "别的市"});
                let r = api.post("admin", "/v1/pools", &body).await;
                assert_eq!(r.status, 201, "seed {seed}: {}", r.text);
            }
        }
    }
    let mut conn = api.db.pool.acquire().await.unwrap();
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.unwrap();
    while fundledger::store::sequence(&mut conn).await.unwrap().map(|p| p.0) != Some(total) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let tag = events::Tag::pool_year("371500", 2024);
    let pools_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE id IN (SELECT event_id FROM event_tags WHERE tag = $1) OR stream_id = 'pool-371500'",
    )
    .bind(tag.as_str())
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    for position in 0..=total {
        let full = replay(&mut conn, AsOf::Position(position), |_| {}).await.unwrap();
        let bounded = replay_of(
            &mut conn,
            std::slice::from_ref(&tag),
            &["pool-371500"],
            AsOf::Position(position),
        )
        .await
        .unwrap();
        assert_eq!(
            bounded.models.pools.quota("371500", 2024),
            full.models.pools.quota("371500", 2024),
            "seed {seed}: as of position {position}"
        );
        assert!(bounded.position <= full.position, "seed {seed}");
        if position == total {
            assert_eq!(bounded.events_read as i64, pools_rows, "seed {seed}: only the pool's rows");
            assert!(pools_rows < total, "seed {seed}: the log holds other events too");
        }
    }
}
