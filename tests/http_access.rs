//! Issue 12, the HTTP half: reads stay inside the caller's scope, 403 before existence,
//! maker-checker compares persons, money moves only with an Idempotency-Key, unknown outcomes
//! are said to be unknown, keys expire only by the maintenance function, hostile input never
//! panics nor echoes personal data, one client cannot starve the others.

mod common;

use std::time::Duration;

use common::{events, id_number, set_up, training, Api};
use fundledger::http::{router, AppState, Limits};
use fundledger::personal::Keys;
use fundledger::tokens::{self, Role, Scope};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

/// Submits and approves person `n`'s training application in county 371502.
async fn approved(api: &Api, n: u32) -> String {
    let r = api.post("clerk", "/v1/applications", &training(n)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    id
}

/// An approved application of person `n` on a closed notice, paid: (application, notice, payout).
async fn paid(api: &Api, n: u32) -> (String, String, String) {
    let id = approved(api, n).await;
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
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let payout = r.json()["payouts"][0]["id"].as_str().unwrap().to_string();
    (id, notice, payout)
}

async fn owner(api: &Api) -> PgConnection {
    PgConnection::connect_with(&api.db.owner).await.unwrap()
}

async fn idempotency_rows(api: &Api) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&mut owner(api).await)
        .await
        .unwrap()
}

// --- Reads stay inside the caller's scope -------------------------------------------------

#[tokio::test]
async fn a_persons_history_is_counted_everywhere_but_shown_only_within_the_callers_scope() {
    let api = Api::start().await;
    set_up(&api).await;
    let id = approved(&api, 3).await;
    let person = id_number("371502", 3);
    let (before, keys_before) = (events(&api).await, idempotency_rows(&api).await);
    // (token, sees the application)
    for (who, sees) in [
        ("clerk", true),
        ("reviewer", true),
        ("clerk_other", false),
        ("clerk_jining", false),
        ("finance", true),
        ("finance_jining", false),
        ("auditor", true),
        ("admin", true),
    ] {
        let r = api
            .post(who, "/v1/persons/subsidies", &json!({"id_number": person, "year": 2024}))
            .await;
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        let body = r.json();
        assert_eq!(body["year"], 2024, "{who}");
        assert_eq!(body["by_program"]["vocational_training"], 1, "{who}: counted everywhere");
        let shown: Vec<&str> = body["applications"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["id"].as_str())
            .collect();
        assert_eq!(shown == [id.as_str()], sees, "{who}: {body}");
        assert!(!r.text.contains(&person), "{who}: the ID number is never shown");
    }
    // A read: no Idempotency-Key needed, nothing recorded, not even a key.
    assert_eq!(events(&api).await, before);
    assert_eq!(idempotency_rows(&api).await, keys_before);

    let r = api.get("clerk", &format!("/v1/persons/{person}/subsidies?year=2024")).await;
    assert_eq!((r.status, r.code().as_str()), (410, "moved"), "{}", r.text);
    assert_eq!(r.header("location"), Some("/v1/persons/subsidies"));
    assert!(!r.text.contains(&person), "{}", r.text);
}

#[tokio::test]
async fn a_notice_is_read_only_by_its_county_its_pool_auditors_and_admins() {
    let api = Api::start().await;
    set_up(&api).await;
    let (_, notice, _) = paid(&api, 4).await;
    for who in ["clerk", "reviewer", "finance", "auditor", "admin"] {
        let r = api.get(who, &format!("/v1/notices/{notice}")).await;
        assert_eq!(r.status, 200, "{who}: {}", r.text);
    }
    for who in ["clerk_other", "reviewer_other", "clerk_jining", "finance_jining"] {
        let r = api.get(who, &format!("/v1/notices/{notice}")).await;
        assert_eq!((r.status, r.code().as_str()), (403, "forbidden"), "{who}: {}", r.text);
        assert!(!r.text.contains("371502") && !r.text.contains("371500"), "{who}: {}", r.text);
    }
}

#[tokio::test]
async fn out_of_scope_is_403_whether_or_not_the_thing_exists_and_never_says_whose_it_is() {
    let api = Api::start().await;
    set_up(&api).await;
    let (application, notice, payout) = paid(&api, 5).await;
    let missing = uuid::Uuid::now_v7().to_string();
    // (token, method, path with {id}, body, the existing id)
    let cases: Vec<(&str, &str, String, Value, &str)> = vec![
        ("clerk_other", "GET", "/v1/applications/{id}".into(), Value::Null, &application),
        ("clerk_jining", "GET", "/v1/notices/{id}".into(), Value::Null, &notice),
        (
            "reviewer_other",
            "POST",
            "/v1/applications/{id}/review".into(),
            json!({"decision": "approve"}),
            &application,
        ),
        (
            "clerk_other",
            "POST",
            "/v1/applications/{id}/withdraw".into(),
            json!({"reason": "r"}),
            &application,
        ),
        ("clerk_other", "POST", "/v1/notices/{id}/close".into(), json!({}), &notice),
        (
            "finance_jining",
            "POST",
            "/v1/payouts/{id}/settlement".into(),
            json!({"status": "failed", "reason": "r"}),
            &payout,
        ),
        (
            "finance_jining",
            "POST",
            "/v1/applications/{id}/recoveries".into(),
            json!({"amount": "1.00", "reason": "r"}),
            &application,
        ),
        // Without the role at all: 403 before anything is looked up.
        (
            "auditor",
            "POST",
            "/v1/applications/{id}/review".into(),
            json!({"decision": "approve"}),
            &application,
        ),
        (
            "clerk",
            "POST",
            "/v1/payouts/{id}/settlement".into(),
            json!({"status": "failed", "reason": "r"}),
            &payout,
        ),
    ];
    for (who, method, path, body, existing) in cases {
        let mut answers = Vec::new();
        for id in [existing, missing.as_str()] {
            let path = path.replace("{id}", id);
            let text = (!body.is_null()).then(|| body.to_string());
            let headers: Vec<(&str, &str)> = if text.is_some() {
                vec![("content-type", "application/json"), ("idempotency-key", "k")]
            } else {
                vec![]
            };
            let r = api.send(method, &path, Some(who), &headers, text.as_deref()).await;
            assert_eq!(
                (r.status, r.code().as_str()),
                (403, "forbidden"),
                "{who} {path}: {}",
                r.text
            );
            for place in ["371502", "371500"] {
                assert!(!r.text.contains(place), "{who} {path} names {place}: {}", r.text);
            }
            answers.push(r.json()["detail"].as_str().unwrap().replace(id, "{id}"));
        }
        assert_eq!(answers[0], answers[1], "{who} {path}: the same answer for both");
    }
    // Those who see everything learn that it is missing.
    let r = api.get("auditor", &format!("/v1/applications/{missing}")).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

// --- Maker-checker names people -----------------------------------------------------------

#[tokio::test]
async fn two_tokens_of_one_person_cannot_submit_and_approve_and_events_name_token_and_person() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut conn = api.db.pool.acquire().await.unwrap();
    let county = Scope::County("371502".into());
    let desk = tokens::create(&mut conn, &[Role::CountyClerk], &county, "李 经办台", "emp-1001")
        .await
        .unwrap();
    let laptop =
        tokens::create(&mut conn, &[Role::CountyReviewer], &county, "李 笔记本", "emp-1001")
            .await
            .unwrap();
    drop(conn);
    let r = api.post(&desk, "/v1/applications", &training(6)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let before = events(&api).await;
    let r = api
        .post(&laptop, &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "self_review_forbidden"), "{}", r.text);
    assert_eq!(events(&api).await, before, "nothing recorded");

    // Another person approves it; each event names its token and person.
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let metadata: Vec<Value> = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE stream_id = $1 ORDER BY stream_version",
    )
    .bind(format!("application-{id}"))
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    let desk_id = desk.split('_').nth(1).unwrap();
    assert_eq!(metadata[0]["person"], "emp-1001", "{metadata:?}");
    assert_eq!(
        metadata[0]["token_id"].as_str().map(|t| t.replace('-', "")),
        Some(desk_id.to_string())
    );
    assert_eq!(metadata[0]["actor"], "李 经办台");
    assert_eq!(metadata[1]["person"], "reviewer", "{metadata:?}");
}

// --- Money moves only with an Idempotency-Key ---------------------------------------------

#[tokio::test]
async fn money_moving_requests_without_an_idempotency_key_are_refused_and_record_nothing() {
    let api = Api::start().await;
    set_up(&api).await;
    let (application, _, payout) = paid(&api, 7).await;
    let other = approved(&api, 8).await;
    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{payout}/settlement"),
            &json!({"status": "failed", "reason": "账户已注销"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cases = [
        ("/v1/payouts".to_string(), json!({"application_ids": [other], "paid_on": "2024-11-12"})),
        (
            format!("/v1/payouts/{payout}/settlement"),
            json!({"status": "settled", "bank_reference": "B1"}),
        ),
        (
            format!("/v1/payouts/{payout}/reissue"),
            json!({"account": {"bank": "中国农业银行聊城分行", "number": "6228480000000000"}, "paid_on": "2024-11-20"}),
        ),
        (
            format!("/v1/applications/{application}/recoveries"),
            json!({"amount": "1.00", "reason": "r"}),
        ),
    ];
    let (before, keys) = (events(&api).await, idempotency_rows(&api).await);
    for (path, body) in &cases {
        let text = body.to_string();
        let r = api
            .send(
                "POST",
                path,
                Some("finance"),
                &[("content-type", "application/json")],
                Some(&text),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (428, "idempotency_key_required"),
            "{path}: {}",
            r.text
        );
        assert_eq!(r.json()["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(events(&api).await, before, "nothing recorded");
    assert_eq!(idempotency_rows(&api).await, keys);
    // The list is one constant, covering the routes still to come.
    for path in
        ["/v1/settlements/import", "/v1/periods/371500/2024-11/seal", "/v1/payouts/x/reissue"]
    {
        assert!(fundledger::http::extract::idempotency_required(path), "{path}");
    }
    assert!(!fundledger::http::extract::idempotency_required("/v1/applications"));
}

#[tokio::test]
async fn a_failed_commit_and_a_timeout_say_the_outcome_is_unknown() {
    let limits = Limits { request_timeout: Duration::from_secs(1), ..Limits::default() };
    let api = Api::start_with(limits).await;
    set_up(&api).await;
    let mut owner = owner(&api).await;
    // A COMMIT that fails: a deferred check that refuses at commit time.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON idempotency_keys \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let r = api
        .post_keyed("admin", "/v1/pools", "k1", &json!({"code": "371600", "name": "滨州市"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (503, "outcome_unknown"), "{}", r.text);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("the outcome is unknown; retry with the same Idempotency-Key"),
        "{detail}"
    );
    assert!(!detail.contains("nothing was recorded"), "{detail}");
    sqlx::raw_sql("DROP TRIGGER refuse_at_commit ON idempotency_keys")
        .execute(&mut owner)
        .await
        .unwrap();

    // A request abandoned at the time limit.
    sqlx::raw_sql(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$; \
         CREATE TRIGGER slow BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION slow();",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let r = api
        .post_keyed("admin", "/v1/pools", "k2", &json!({"code": "371700", "name": "德州市"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (503, "request_timeout"), "{}", r.text);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("the outcome is unknown; retry with the same Idempotency-Key"),
        "{detail}"
    );
    assert!(!detail.contains("nothing was recorded"), "{detail}");
}

#[tokio::test]
async fn idempotency_keys_expire_only_through_the_maintenance_function_and_an_expired_key_is_new() {
    let api = Api::start().await;
    set_up(&api).await;
    let body = json!({"code": "371600", "name": "滨州市"});
    let r = api.post_keyed("admin", "/v1/pools", "old-key", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut owner = owner(&api).await;
    // The service's role cannot delete keys itself.
    let writer_deletes: Option<bool> = sqlx::query_scalar(
        "SELECT has_table_privilege(oid, 'idempotency_keys', 'DELETE') FROM pg_roles WHERE rolname = 'fundledger_writer'",
    )
    .fetch_optional(&mut owner)
    .await
    .unwrap();
    assert_ne!(writer_deletes, Some(true));
    let maintenance_prunes: bool = sqlx::query_scalar(
        "SELECT has_function_privilege('fundledger_maintenance', 'fundledger_prune_idempotency(interval)', 'EXECUTE')",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(maintenance_prunes);
    // Fewer than 30 days is refused.
    let short = sqlx::query("SELECT fundledger_prune_idempotency('10 days')")
        .execute(&mut owner)
        .await
        .unwrap_err();
    assert!(short.to_string().contains("at least 30 days"), "{short}");
    // A fresh key survives pruning; one older than the retention period does not.
    let pruned: i64 = sqlx::query_scalar(&format!(
        "SELECT fundledger_prune_idempotency('{} days')",
        fundledger::http::unit::IDEMPOTENCY_RETENTION_DAYS
    ))
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(pruned, 0);
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '40 days' WHERE key = 'old-key'",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let pruned: i64 = sqlx::query_scalar("SELECT fundledger_prune_idempotency('35 days')")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    // The expired key is new: a different body is not a conflict but a new request.
    let r = api
        .post_keyed("admin", "/v1/pools", "old-key", &json!({"code": "371700", "name": "德州市"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.header("idempotent-replayed").is_none());
}

// --- Hostile input -------------------------------------------------------------------------

#[tokio::test]
async fn hostile_positions_and_dates_are_refused_not_panicked_on() {
    let api = Api::start().await;
    set_up(&api).await;
    let r = api.get("auditor", "/v1/events/live?after=-1").await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"), "{}", r.text);
    for as_of in ["%2B262143-12-31", "-262143-01-01", "9999-12-31T23:59:59Z"] {
        // `as_of` reads the positioned log, which trails commits by the oldest open writer of
        // the cluster (the other tests' too): the quota just set may take a moment to appear.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut r =
            api.get("finance", &format!("/v1/pools/371500/quotas/2024?as_of={as_of}")).await;
        while r.status == 404 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            r = api.get("finance", &format!("/v1/pools/371500/quotas/2024?as_of={as_of}")).await;
        }
        assert!(r.status == 422 || r.status == 200, "{as_of}: {} {}", r.status, r.text);
        if r.status == 422 {
            assert_eq!(r.code(), "validation_failed");
        }
    }
    let r = api.get("finance", "/v1/pools/371500/quotas/2024?as_of=%2B262143-12-31").await;
    assert_eq!(r.status, 422, "{}", r.text);
}

#[tokio::test]
async fn a_panic_becomes_a_500_problem_with_the_request_id() {
    let api = Api::start().await;
    set_up(&api).await;
    // An application stream whose first event does not read back: the review's fold panics
    // (an internal fact broken), which must not take the connection down unanswered.
    let id = uuid::Uuid::now_v7().to_string();
    let mut conn = api.db.pool.acquire().await.unwrap();
    fundledger::store::append(
        &mut conn,
        &fundledger::store::Append {
            events: vec![fundledger::store::NewEvent {
                stream_id: format!("application-{id}"),
                event_type: "ApplicationSubmitted".into(),
                schema_version: 1,
                data: json!({"not": "an application"}),
                metadata: events::Metadata {
                    pool: Some("371500".into()),
                    county: Some("371502".into()),
                    ..Default::default()
                },
                tags: vec![],
                business_date: None,
            }],
            expected: vec![],
            condition: None,
        },
    )
    .await
    .unwrap();
    drop(conn);
    let r = api
        .send(
            "POST",
            &format!("/v1/applications/{id}/review"),
            Some("reviewer"),
            &[("content-type", "application/json"), ("x-request-id", "req-panic-1")],
            Some(r#"{"decision":"approve"}"#),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (500, "internal"), "{}", r.text);
    assert_eq!(r.header("x-request-id"), Some("req-panic-1"));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

#[tokio::test]
async fn personal_values_are_never_echoed_and_county_staff_never_see_the_person_key() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut body = training(9);
    body["applicant"]["id_number"] = json!(371502198801010016_u64);
    let r = api.post("clerk", "/v1/applications", &body).await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "applicant.id_number");
    assert!(!r.text.contains("371502198801010016"), "{}", r.text);
    let mut body = training(9);
    body["applicant"]["name"] = json!(["王小五"]);
    let r = api.post("clerk", "/v1/applications", &body).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(!r.text.contains("王小五"), "{}", r.text);

    let id = approved(&api, 10).await;
    let key: String = sqlx::query_scalar(
        "SELECT data->'person'->>'key' FROM events WHERE stream_id = $1 AND stream_version = 1",
    )
    .bind(format!("application-{id}"))
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(key.len(), 64);
    for who in ["clerk", "reviewer"] {
        let r = api.get(who, &format!("/v1/applications/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.text.contains(&key), "{who} sees the person key: {}", r.text);
        let r = api
            .post(
                who,
                "/v1/persons/subsidies",
                &json!({"id_number": id_number("371502", 10), "year": 2024}),
            )
            .await;
        assert!(!r.text.contains(&key), "{who} sees the person key: {}", r.text);
    }
}

// --- Nothing one client does can starve the others ----------------------------------------

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_the_others_do_not() {
    let limits = Limits { token_requests_per_s: 1, token_request_burst: 3, ..Limits::default() };
    let api = Api::start_with(limits).await;
    for _ in 0..3 {
        let r = api.get("clerk", "/v1/applications").await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = api.get("clerk", "/v1/applications").await;
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"), "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = api.get("reviewer", "/v1/applications").await;
    assert_eq!(r.status, 200, "another token is not slowed: {}", r.text);
}

#[tokio::test]
async fn an_unauthenticated_request_costs_no_database_query() {
    let db = fundledger::postgres::testing::TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let token = tokens::create(&mut conn, &[Role::Auditor], &Scope::All, "审计 周", "auditor-1")
        .await
        .unwrap();
    drop(conn);
    let state = AppState::new(db.pool.clone(), Keys::generate(), Limits::default());
    let cache = state.tokens.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let get = |token: String| {
        common::raw_owned(
            addr,
            format!("GET /v1/applications HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\r\n"),
        )
    };
    assert_eq!(get(token.clone()).await.status, 200);
    let loads = cache.loads();
    // A flood of invented tokens, well-formed or not: at most one reload of the token table
    // for all of them together.
    let mut flood = Vec::new();
    for i in 0..40 {
        let forged = if i % 2 == 0 {
            format!("fl_{}_{}", uuid::Uuid::new_v4().simple(), "A".repeat(43))
        } else {
            format!("garbage-{i}")
        };
        flood.push(tokio::spawn(get(forged)));
    }
    for r in flood {
        assert_eq!(r.await.unwrap().status, 401);
    }
    assert!(cache.loads() <= loads + 1, "{} loads for 40 forged tokens", cache.loads() - loads);
    // With the database gone, a malformed token is still a plain 401, not a 503.
    db.pool.close().await;
    let r = get("not-a-token".into()).await;
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"), "{}", r.text);
}

/// A server run by `http::serve` (header-read timeout, shutdown signal) over a fresh database,
/// with an auditor's token; the state is kept to look inside.
struct Served {
    addr: std::net::SocketAddr,
    db: fundledger::postgres::testing::TestDatabase,
    state: AppState,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn served(limits: Limits) -> Served {
    let db = fundledger::postgres::testing::TestDatabase::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let token = tokens::create(&mut conn, &[Role::Auditor], &Scope::All, "审计 周", "auditor-1")
        .await
        .unwrap();
    drop(conn);
    fundledger::publishing::publish(
        &db.pool,
        &fundledger::publishing::load_policy_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies/shandong-2024-expansion-quota.toml"),
        )
        .unwrap(),
        "admin",
    )
    .await
    .unwrap();
    let state = AppState::new(db.pool.clone(), Keys::generate(), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(fundledger::http::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    Served { addr, db, state, token, stop: Some(stop), served }
}

/// Opens `GET /v1/events/live` and reads until the first event has arrived.
async fn live(addr: std::net::SocketAddr, token: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /v1/events/live?after=0 HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    while !seen.contains("id: 1") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the feed delivers")
            .unwrap();
        assert!(n > 0, "the feed closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    s
}

/// Reads until the server closes the stream; panics if it has not within `within`.
async fn closes_within(mut s: tokio::net::TcpStream, within: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8192];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server ended the stream");
}

async fn listening_backends(db: &fundledger::postgres::testing::TestDatabase) -> i64 {
    let mut owner = PgConnection::connect_with(&db.owner).await.unwrap();
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&db.name)
    .fetch_one(&mut owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn live_readers_share_one_listening_connection_and_end_on_revocation_and_shutdown() {
    let mut s = served(Limits::default()).await;
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(live(s.addr, &s.token).await);
    }
    assert_eq!(s.state.live_head.readers(), 4);
    assert_eq!(listening_backends(&s.db).await, 1, "one LISTEN connection for all readers");
    // While they wait, they hold no pooled connection. (Sampled until the server's own
    // background work, the sequencer and the token refresh, is between two runs: a reader
    // holding a connection would hold it the whole time.)
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut busy;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        busy = s.db.pool.size() as usize - s.db.pool.num_idle();
        if busy <= 1 || std::time::Instant::now() > deadline {
            break;
        }
    }
    assert!(busy <= 1, "{busy} pooled connections busy for 4 waiting readers");

    // Revoking the token ends its streams within about a second.
    let mut conn = s.db.pool.acquire().await.unwrap();
    tokens::revoke(&mut conn, &s.token).await.unwrap();
    drop(conn);
    let first = readers.remove(0);
    closes_within(first, Duration::from_secs(4)).await;

    // Shutting down ends the others, and the server returns.
    let mut conn = s.db.pool.acquire().await.unwrap();
    let other = tokens::create(&mut conn, &[Role::Auditor], &Scope::All, "审计 吴", "auditor-2")
        .await
        .unwrap();
    drop(conn);
    let stream = live(s.addr, &other).await;
    s.stop.take().unwrap().send(()).unwrap();
    closes_within(stream, Duration::from_secs(4)).await;
    tokio::time::timeout(Duration::from_secs(5), &mut s.served)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let limits = Limits { header_read_timeout: Duration::from_secs(1), ..Limits::default() };
    let s = served(limits).await;
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n").await.unwrap();
    closes_within(slow, Duration::from_secs(4)).await;
    // A client that sends its headers is served as usual.
    let r =
        common::raw(s.addr, b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn certificate_numbers_are_sealed_bound_to_their_application_and_shown_masked() {
    let api = Api::start().await;
    set_up(&api).await;
    let body = json!({
        "program": "skill_upgrade", "county": "371502", "submitted_on": "2024-08-01",
        "applicant": {"id_number": id_number("371502", 11), "name": "张三"},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": "4-10-01-05", "level": 4, "number": "S0000371500124",
                        "issued_on": "2024-03-01"}
    });
    let r = api.post("clerk", "/v1/applications", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let stored: String = sqlx::query_scalar(
        "SELECT data::text FROM events WHERE stream_id = $1 AND stream_version = 1",
    )
    .bind(format!("application-{id}"))
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert!(!stored.contains("S0000371500124"), "the number is not stored in the clear: {stored}");
    assert!(stored.contains("number_sealed") && stored.contains("**********0124"), "{stored}");
    let r = api.get("clerk", &format!("/v1/applications/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains("S0000371500124") && r.text.contains("**********0124"), "{}", r.text);
}

#[tokio::test]
async fn tokens_made_before_persons_existed_become_persons_of_their_own() {
    use sqlx::ConnectOptions;
    use std::borrow::Cow;
    let admin = fundledger::postgres::testing::admin_options();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.unwrap();
    let mut db = admin.clone().database(&name).connect().await.unwrap();
    // The schema as it was before 0007, with a token made then.
    let before = sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            fundledger::postgres::MIGRATOR.iter().filter(|m| m.version < 7).cloned().collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    before.run(&mut db).await.unwrap();
    let old = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO api_tokens (id, label, roles, county, secret_hash) \
         VALUES ($1, 'clerk', '{county_clerk}', '371502', '\\x00')",
    )
    .bind(old)
    .execute(&mut db)
    .await
    .unwrap();
    fundledger::postgres::MIGRATOR.run(&mut db).await.unwrap();
    let person: String = sqlx::query_scalar("SELECT person FROM api_tokens WHERE id = $1")
        .bind(old)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(person, format!("token:{old}"));
    let blank = sqlx::query(
        "INSERT INTO api_tokens (id, label, person, roles, secret_hash) VALUES ($1, 'x', ' ', '{admin}', '\\x00')",
    )
    .bind(uuid::Uuid::new_v4())
    .execute(&mut db)
    .await;
    assert!(blank.is_err(), "a token names a person");
    drop(db);
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}
