//! Commands that share a commit (`commands::group`: a batch's items, each under its own
//! savepoint) and commands executed together (`commands::together`: one pool's reviews, read,
//! decided and appended at once). The quota cap, "each key answered once" and "a refusal sinks
//! nothing else" hold there as they do one at a time, and a lock cycle between a group and
//! another transaction costs one member a quick 503, not the group.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::{events, set_up, training, Api};
use fundledger::commands::applications::Review;
use fundledger::commands::applications::{
    review, review_together, ApplicationError, ReviewRequest,
};
use fundledger::commands::group::Groups;
use fundledger::commands::Db;
use fundledger::store::AppendError;
use serde_json::json;
use sqlx::Executor;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 20).unwrap()
}

async fn submitted(api: &Api, persons: std::ops::Range<u32>) -> Vec<String> {
    let mut ids = Vec::new();
    for person in persons {
        let r = api.post("clerk", "/v1/applications", &training(person)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    ids
}

async fn approved_events(api: &Api) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ApplicationApproved'")
        .fetch_one(&api.db.pool)
        .await
        .unwrap()
}

fn database(api: &Api) -> String {
    api.db.pool.connect_options().get_database().unwrap().to_string()
}

#[tokio::test]
async fn one_pools_concurrent_approvals_share_commits_never_pass_the_cap_and_answer_each_key_once()
{
    let api = Arc::new(Api::start().await);
    set_up(&api).await;
    // The cap is 15000.00 and each training 600.00: after 15 approvals one at a time, 10 of
    // the next 20 fit.
    for id in submitted(&api, 300..315).await {
        let path = format!("/v1/applications/{id}/review");
        let r = api.post("reviewer", &path, &json!({"decision": "approve"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let ids = submitted(&api, 315..335).await;
    let before = api.together.stats();

    // Hold the first member at its key claim, so that the others pile up behind it: 30
    // requests, one group (GROUP_MEMBERS_MAX is 32), as large as groups get under load.
    let mut holder = api.db.pool.begin().await.unwrap();
    holder.execute("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE").await.unwrap();
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // The first ten are sent twice at once with the same key (a county system retrying):
        // in one group, the second copy finds the first's stored answer, not yet committed,
        // and replays it once the group has committed.
        for copy in 0..if i < 10 { 2 } else { 1 } {
            let (api, id) = (api.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let path = format!("/v1/applications/{id}/review");
                let key = format!("approve-{id}");
                let r =
                    api.post_keyed("reviewer", &path, &key, &json!({"decision": "approve"})).await;
                (i, copy, r)
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.rollback().await.unwrap();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }

    let (mut approved, mut exceeded) = (0, 0);
    for (i, copy, r) in &replies {
        if *copy == 1 {
            continue;
        }
        match (r.status, r.code().as_str()) {
            (200, _) => approved += 1,
            (409, "quota_exceeded") => exceeded += 1,
            other => panic!("approval {i}: {other:?} {}", r.text),
        }
    }
    assert_eq!((approved, exceeded), (10, 10));
    // Both copies of a key get the same answer, and one of them is the stored one replayed.
    for i in 0..10 {
        let copies: Vec<_> =
            replies.iter().filter(|(j, _, _)| *j == i).map(|(_, _, r)| r).collect();
        assert_eq!(copies.len(), 2);
        assert_eq!((copies[0].status, copies[0].json()), (copies[1].status, copies[1].json()));
        let replayed =
            copies.iter().filter(|r| r.header("idempotent-replayed") == Some("true")).count();
        assert_eq!(replayed, 1, "{} / {}", copies[0].text, copies[1].text);
    }
    assert_eq!(approved_events(&api).await, 25);
    let q = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    assert_eq!(q["committed"], "15000.00", "{q}");
    // They were executed together: the first alone (held at its key claim), the 29 others
    // queued behind it in one batch (TOGETHER_MAX is 64); the copies of a key in rounds.
    let after = api.together.stats();
    let (batches, members) = (after.batches - before.batches, after.members - before.members);
    assert_eq!((batches, members), (2, 30), "{batches} batches of {members} members");
}

#[tokio::test]
async fn a_refusal_in_a_group_rolls_back_only_its_own_savepoint() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = submitted(&api, 400..402).await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let groups = Groups::new(api.db.pool.clone());
    let db = database(&api);

    let mut first = groups.seat("review:371500").await.unwrap();
    // Two more members join while the first holds the seat: A again (refused, already
    // approved by then) and B.
    let member = |id: String| {
        let (groups, db) = (groups.clone(), db.clone());
        tokio::spawn(async move {
            let mut seat = groups.seat("review:371500").await.unwrap();
            let r =
                review(Db::in_group(&mut seat, &db), &id, &Review::Approve, "reviewer", today())
                    .await;
            match &r {
                Ok(_) => seat.keep().await.unwrap(),
                Err(_) => seat.discard().await.unwrap(),
            }
            r
        })
    };
    let again = member(a.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = member(b.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = events(&api).await;
    review(Db::in_group(&mut first, &db), &a, &Review::Approve, "reviewer", today()).await.unwrap();
    assert_eq!(events(&api).await, before, "nothing is visible before the group commits");
    first.keep().await.unwrap();

    let refused = again.await.unwrap().unwrap_err();
    assert!(matches!(refused, ApplicationError::NotReviewable { .. }), "{refused:?}");
    other.await.unwrap().unwrap();
    assert_eq!(approved_events(&api).await, 2);
    let stats = groups.stats();
    assert_eq!((stats.groups, stats.members), (1, 3));
    let app = api.get("clerk", &format!("/v1/applications/{b}")).await.json();
    assert_eq!(app["status"], "approved", "{app}");
}

#[tokio::test]
async fn a_lock_cycle_with_another_transaction_ends_one_member_contended_and_commits_the_rest() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = submitted(&api, 500..502).await;
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let groups = Groups::new(api.db.pool.clone());
    let db = database(&api);

    // The first member approves A: the group now holds the pool's quota row.
    let mut first = groups.seat("review:371500").await.unwrap();
    review(Db::in_group(&mut first, &db), &a, &Review::Approve, "reviewer", today()).await.unwrap();
    // Another transaction holds B's row, which the second member will need.
    let mut other = api.db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM application_status WHERE application = $1 FOR UPDATE")
        .bind(&b)
        .execute(&mut *other)
        .await
        .unwrap();
    let second = {
        let (groups, db, b) = (groups.clone(), db.clone(), b.clone());
        tokio::spawn(async move {
            let mut seat = groups.seat("review:371500").await.unwrap();
            let started = Instant::now();
            let r = review(Db::in_group(&mut seat, &db), &b, &Review::Approve, "reviewer", today())
                .await;
            seat.discard().await.unwrap();
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = tokio::spawn(first.keep());
    // The second member now waits for B's row; the other transaction waits for the quota row
    // the group holds: a cycle, which PostgreSQL breaks by failing the one waiting longest.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cycle = tokio::spawn(async move {
        let r = sqlx::query("UPDATE quota_usage SET committed = committed WHERE pool = '371500'")
            .execute(&mut *other)
            .await;
        other.rollback().await.unwrap();
        r
    });

    let (r, took) = second.await.unwrap();
    match r {
        Err(ApplicationError::Store(AppendError::Contended)) => {}
        other => panic!("the member in the cycle ends contended: {other:?}"),
    }
    // At once, not after retrying into the same cycle again and again.
    assert!(took < Duration::from_secs(5), "{took:?}");
    first.await.unwrap().unwrap();
    cycle.await.unwrap().unwrap();
    assert_eq!(approved_events(&api).await, 1);
    let app = api.get("clerk", &format!("/v1/applications/{a}")).await.json();
    assert_eq!(app["status"], "approved", "{app}");
    let app = api.get("clerk", &format!("/v1/applications/{b}")).await.json();
    assert_eq!(app["status"], "submitted", "{app}");
}

#[tokio::test]
async fn a_member_dropped_half_way_rolls_the_group_back_and_nothing_is_recorded() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = submitted(&api, 600..602).await;
    let groups = Groups::new(api.db.pool.clone());
    let db = database(&api);
    let before = events(&api).await;

    let mut first = groups.seat("review:371500").await.unwrap();
    let second = {
        let (groups, db, id) = (groups.clone(), db.clone(), ids[1].clone());
        tokio::spawn(async move {
            let mut seat = groups.seat("review:371500").await?;
            review(Db::in_group(&mut seat, &db), &id, &Review::Approve, "reviewer", today())
                .await
                .unwrap();
            seat.keep().await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    review(Db::in_group(&mut first, &db), &ids[0], &Review::Approve, "reviewer", today())
        .await
        .unwrap();
    // Cancelled (a panic, a dropped task) before it ended: its work is in the transaction,
    // neither kept nor undone.
    drop(first);
    let second = second.await.unwrap();
    assert!(
        matches!(second, Err(fundledger::commands::group::GroupError::RolledBack)),
        "{second:?}"
    );
    assert_eq!(events(&api).await, before);
    // The next group works.
    let mut seat = groups.seat("review:371500").await.unwrap();
    review(Db::in_group(&mut seat, &db), &ids[0], &Review::Approve, "reviewer", today())
        .await
        .unwrap();
    seat.keep().await.unwrap();
    assert_eq!(approved_events(&api).await, 1);
}

#[tokio::test]
async fn a_batchs_items_share_commits_its_refusals_sink_nothing_and_a_resent_batch_records_nothing_twice(
) {
    let api = Arc::new(Api::start().await);
    set_up(&api).await;
    let before = api.groups.stats();
    let count = events(&api).await;
    // 40 items: two groups of a batch (GROUP_MEMBERS_MAX is 30).
    let items: Vec<_> = (0..40)
        .map(|i| {
            // Item 7 is refused (no applicant): its savepoint alone is undone.
            let mut body = training(700 + i);
            if i == 7 {
                body.as_object_mut().unwrap().remove("applicant");
            }
            json!({"path": "/v1/applications", "idempotency_key": format!("g-{i}"), "body": body})
        })
        .collect();
    let batch = json!({ "requests": items });
    // The same batch sent twice at once (a county system retrying after a timeout): the
    // second's items wait on the first's claims and replay its answers once it has committed.
    let send = |api: Arc<Api>, batch: serde_json::Value| {
        tokio::spawn(async move { api.post_keyed("clerk", "/v1/batch", "batch-1", &batch).await })
    };
    let (first, second) = (send(api.clone(), batch.clone()), send(api.clone(), batch.clone()));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!((first.status, second.status), (200, 200), "{} / {}", first.text, second.text);
    let (first, second) = (first.json(), second.json());
    for i in 0..40 {
        let (a, b) = (&first["results"][i], &second["results"][i]);
        let want = if i == 7 { 422 } else { 201 };
        assert_eq!(
            (a["status"].as_u64(), b["status"].as_u64()),
            (Some(want), Some(want)),
            "{a} {b}"
        );
        assert_eq!(a["body"], b["body"], "item {i}");
        if i != 7 {
            let replayed = [a, b].iter().filter(|r| r["idempotent_replayed"] == true).count();
            assert_eq!(replayed, 1, "item {i}: {a} {b}");
        }
    }
    assert_eq!(events(&api).await, count + 39);
    // Each batch was two groups (items 0-29 and 30-39): their holds and the 39 items that
    // reached their unit of work (item 7 is refused by the route's checks, before it).
    let after = api.groups.stats();
    assert_eq!((after.groups - before.groups, after.members - before.members), (4, 82));
}

#[tokio::test]
async fn reviews_executed_together_decide_in_order_and_refuse_each_on_its_own() {
    let api = Api::start().await;
    set_up(&api).await;
    // The cap is 15000.00 and each training 600.00: 25 approvals fit.
    let ids = submitted(&api, 800..827).await;
    let before = events(&api).await;
    let request = |id: &str, review: Review, reviewer: &str| ReviewRequest {
        id: id.to_string(),
        review,
        reviewer: reviewer.to_string(),
        issuer: None,
    };
    let reject = |reason: &str| Review::Reject { reasons: vec![reason.to_string()] };
    let mut requests = vec![
        // Its submitter may not review it; the reviewer after may.
        request(&ids[1], Review::Approve, "clerk"),
        request("00000000-0000-4000-8000-000000000000", Review::Approve, "reviewer"),
        request(&ids[26], reject(" "), "reviewer"),
        request(&ids[26], reject("材料不全"), "reviewer"),
    ];
    requests.extend(ids[..26].iter().map(|id| request(id, Review::Approve, "reviewer")));
    // Decided already, by the approval before it in the same batch.
    requests.push(request(&ids[0], reject("重复"), "reviewer"));

    let outcomes = review_together(&mut Db::from(&api.db.pool), &requests, today()).await.unwrap();
    assert_eq!(outcomes.len(), requests.len());
    let code = |i: usize| match &outcomes[i] {
        Ok(app) => format!("{:?}", app.status),
        Err(e) => e.code().to_string(),
    };
    assert_eq!(
        (0..4).map(code).collect::<Vec<_>>(),
        ["self_review_forbidden", "not_found", "validation_failed", "Rejected"]
    );
    // 25 of the 26 approvals fit under the cap, in the order given; the 26th does not.
    assert!((4..29).all(|i| code(i) == "Approved"), "{:?}", (4..31).map(code).collect::<Vec<_>>());
    assert_eq!(code(29), "quota_exceeded");
    assert_eq!(code(30), "invalid_state");
    assert_eq!(events(&api).await, before + 26, "25 approvals and one rejection");
    let q = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    assert_eq!(q["committed"], "15000.00", "{q}");
    let app = api.get("clerk", &format!("/v1/applications/{}", ids[25])).await.json();
    assert_eq!(app["status"], "submitted", "{app}");
}

#[tokio::test]
async fn a_key_claimed_meanwhile_by_another_request_runs_the_batch_again_and_records_nothing_for_it(
) {
    let api = Arc::new(Api::start().await);
    set_up(&api).await;
    let ids = submitted(&api, 900..902).await;
    // Another request holds the reviewer's key `k-1`, not yet committed: the review with that
    // key runs, waits at its claim, finds it taken once the other commits, and runs again.
    let mut holder = api.db.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (token_id, key, fingerprint, status, response)
         SELECT id, 'k-1', 'another request', 201, '{}' FROM api_tokens WHERE label = 'reviewer'",
    )
    .execute(&mut *holder)
    .await
    .unwrap();
    let send = |id: String, key: &'static str| {
        let api = api.clone();
        tokio::spawn(async move {
            let path = format!("/v1/applications/{id}/review");
            api.post_keyed("reviewer", &path, key, &json!({"decision": "approve"})).await
        })
    };
    let (first, second) = (send(ids[0].clone(), "k-1"), send(ids[1].clone(), "k-2"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.commit().await.unwrap();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(
        (first.status, first.code().as_str()),
        (409, "idempotency_conflict"),
        "{}",
        first.text
    );
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(approved_events(&api).await, 1);
    let app = api.get("clerk", &format!("/v1/applications/{}", ids[0])).await.json();
    assert_eq!(app["status"], "submitted", "{app}");
}

/// Persons' submissions over HTTP are executed together: ten copies of one person's training
/// sent at once under different keys, in one batch with submissions of other persons, record
/// that person's training once; each other copy is refused naming its rule and field, and
/// records nothing. The others are all recorded.
#[tokio::test]
async fn one_persons_submissions_in_one_batch_are_recorded_once() {
    let api = Arc::new(Api::start().await);
    set_up(&api).await;
    let before_events = events(&api).await;
    let before = api.together.stats();
    let send = |person: u32, key: String| {
        let api = api.clone();
        tokio::spawn(async move {
            (person, api.post_keyed("clerk", "/v1/applications", &key, &training(person)).await)
        })
    };
    // Hold the first batches at their key claims: ten other persons first, so that each queue
    // is led by one of them, and everything sent after queues behind and meets in one batch.
    let mut holder = api.db.pool.begin().await.unwrap();
    holder.execute("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE").await.unwrap();
    let mut tasks: Vec<_> = (0..10).map(|i| send(960 + i, format!("lead-{i}"))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20u32 {
        // Even: person 950 each time; odd: persons 971.. one each.
        let person = if i % 2 == 0 { 950 } else { 970 + i };
        tasks.push(send(person, format!("same-person-{i}")));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.rollback().await.unwrap();
    let (mut recorded, mut refused) = (0, 0);
    for t in tasks {
        let (person, r) = t.await.unwrap();
        match (person, r.status) {
            (950, 201) => recorded += 1,
            (950, _) => {
                assert_eq!(r.status, 409, "{}", r.text);
                assert_eq!(r.code(), "occupation_level_already_subsidized", "{}", r.text);
                let fields = r.json()["errors"].as_array().cloned().unwrap_or_default();
                assert!(!fields.is_empty() && fields[0]["field"].is_string(), "{}", r.text);
                refused += 1;
            }
            (_, status) => assert_eq!(status, 201, "person {person}: {}", r.text),
        }
    }
    assert_eq!((recorded, refused), (1, 9));
    assert_eq!(events(&api).await, before_events + 21, "one for person 950, 20 for the others");
    let after = api.together.stats();
    let (batches, members) = (after.batches - before.batches, after.members - before.members);
    assert_eq!(members, 30, "all went through the queues");
    // Each queue: its first request alone, then the rest in one batch (or two, if a queue's
    // lead went to a request sent after the pause).
    assert!(batches <= 6, "{batches} batches");
}
