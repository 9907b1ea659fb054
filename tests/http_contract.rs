//! The HTTP contract's edges against real PostgreSQL: 401/403 for each role boundary (a table
//! of role × route), Idempotency-Key replay and conflict (also 8 copies at one instant),
//! malformed and hostile bodies, unknown routes and methods, the OpenAPI document, the batch
//! endpoint, the live feed, and an unreachable database.

mod common;

use std::time::Duration;

use common::{events, id_number, raw, set_up, training, Api, TOKENS};
use fundledger::http::{router, AppState, Limits};
use fundledger::personal::Keys;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An application approved, on a notice with an objection, and another one paid.
struct Fixtures {
    approved: String,
    notice: String,
    objection: String,
    payout: String,
    paid: String,
}

async fn fixtures(api: &Api) -> Fixtures {
    let mut ids = Vec::new();
    for person in 0..2 {
        let id = api.post("clerk", "/v1/applications", &training(person)).await.json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = api
            .post(
                "reviewer",
                &format!("/v1/applications/{id}/review"),
                &json!({"decision": "approve"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(id);
    }
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [ids[1]]}),
        )
        .await;
    let paid_notice = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.post("clerk", &format!("/v1/notices/{paid_notice}/close"), &json!({})).await.status,
        200
    );
    let r = api
        .post(
            "finance",
            "/v1/payouts",
            &json!({"application_ids": [ids[1]], "paid_on": "2024-11-12"}),
        )
        .await;
    let payout = r.json()["payouts"][0]["id"].as_str().unwrap().to_string();
    let today = fundledger::http::today().to_string();
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": today, "application_ids": [ids[0]]}),
        )
        .await;
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let r = api
        .post(
            "clerk",
            &format!("/v1/notices/{notice}/objections"),
            &json!({"application_id": ids[0], "summary": "s"}),
        )
        .await;
    let objection = r.json()["id"].as_str().unwrap().to_string();
    Fixtures { approved: ids[0].clone(), notice, objection, payout, paid: ids[1].clone() }
}

#[tokio::test]
async fn each_route_admits_exactly_its_roles_and_scopes() {
    let api = Api::start().await;
    set_up(&api).await;
    let f = fixtures(&api).await;
    let person = id_number("371502", 0);
    // (method, path, body, tokens allowed). Every other token of TOKENS must get 403; no
    // token 401. Allowed tokens get anything but 401/403 (their request may still be refused
    // for its content).
    let table: Vec<(&str, String, Value, Vec<&str>)> = vec![
        ("POST", "/v1/pools".into(), json!({"code": "371600", "name": "滨州市"}), vec!["admin"]),
        (
            "POST",
            "/v1/counties".into(),
            json!({"code": "371602", "name": "滨城区", "pool": "371500"}),
            vec!["admin"],
        ),
        (
            "POST",
            "/v1/pools/371500/historical-balance".into(),
            json!({"as_of": "2023-12-31", "amount": "1.00", "document": "d"}),
            vec!["admin", "finance"],
        ),
        (
            "POST",
            "/v1/pools/371500/quotas".into(),
            json!({"year": 2025, "ratio": "0.15", "filing_document": "f"}),
            vec!["admin", "finance"],
        ),
        (
            "POST",
            "/v1/pools/371500/notice-period".into(),
            json!({"working_days": 5, "document": "d"}),
            vec!["admin", "finance"],
        ),
        (
            "GET",
            "/v1/pools/371500/quotas/2024".into(),
            Value::Null,
            vec!["admin", "auditor", "finance"],
        ),
        ("POST", "/v1/applications".into(), training(50), vec!["clerk"]),
        (
            "GET",
            "/v1/applications".into(),
            Value::Null,
            vec![
                "admin",
                "auditor",
                "finance",
                "finance_jining",
                "clerk",
                "reviewer",
                "clerk_other",
                "reviewer_other",
                "clerk_jining",
                "reviewer_jining",
            ],
        ),
        (
            "GET",
            format!("/v1/applications/{}", f.approved),
            Value::Null,
            vec!["admin", "auditor", "finance", "clerk", "reviewer"],
        ),
        (
            "POST",
            format!("/v1/applications/{}/review", f.approved),
            json!({"decision": "approve"}),
            vec!["reviewer"],
        ),
        (
            "POST",
            format!("/v1/applications/{}/withdraw", f.paid),
            json!({"reason": "r"}),
            vec!["clerk"],
        ),
        (
            "POST",
            "/v1/persons/subsidies".to_string(),
            json!({"id_number": person, "year": 2024}),
            TOKENS.iter().map(|t| t.0).collect(),
        ),
        (
            "POST",
            "/v1/notices".into(),
            json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [f.approved]}),
            vec!["clerk"],
        ),
        (
            "GET",
            format!("/v1/notices/{}", f.notice),
            Value::Null,
            vec!["admin", "auditor", "finance", "clerk", "reviewer"],
        ),
        (
            "POST",
            format!("/v1/notices/{}/objections", f.notice),
            json!({"application_id": f.approved, "summary": "s"}),
            vec!["clerk", "reviewer"],
        ),
        (
            "POST",
            format!("/v1/objections/{}/resolve", f.objection),
            json!({"upheld": false, "note": "n"}),
            vec!["reviewer"],
        ),
        ("POST", format!("/v1/notices/{}/close", f.notice), json!({}), vec!["clerk", "reviewer"]),
        (
            "POST",
            "/v1/payouts".into(),
            json!({"application_ids": [f.paid], "paid_on": "2024-11-12"}),
            vec!["finance"],
        ),
        (
            "POST",
            format!("/v1/payouts/{}/settlement", f.payout),
            json!({"status": "failed", "reason": "账户已注销"}),
            vec!["finance"],
        ),
        (
            "POST",
            format!("/v1/applications/{}/recoveries", f.paid),
            json!({"amount": "1.00", "reason": "r"}),
            vec!["finance"],
        ),
        ("GET", "/v1/events?after=0&limit=10".into(), Value::Null, vec!["admin", "auditor"]),
        ("GET", "/v1/audit/verify".into(), Value::Null, vec!["auditor"]),
        (
            "GET",
            "/v1/reports/spending?pool=371500&year=2024".into(),
            Value::Null,
            vec!["admin", "auditor", "finance"],
        ),
    ];
    let mut checked = 0;
    for (method, path, body, allowed) in &table {
        let text = (!body.is_null()).then(|| body.to_string());
        let headers: &[(&str, &str)] =
            if text.is_some() { &[("content-type", "application/json")] } else { &[] };
        let r = api.send(method, path, None, headers, text.as_deref()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "unauthorized"),
            "{method} {path} without a token"
        );
        let r = api
            .send(
                method,
                path,
                Some("fl_00000000000000000000000000000000_forged"),
                headers,
                text.as_deref(),
            )
            .await;
        assert_eq!(r.status, 401, "{method} {path} with a forged token");
        for (who, ..) in TOKENS {
            let before = events(&api).await;
            let r = api.send(method, path, Some(who), headers, text.as_deref()).await;
            if allowed.contains(&who) {
                assert!(
                    ![401, 403].contains(&r.status),
                    "{who} may {method} {path}: {} {}",
                    r.status,
                    r.text
                );
            } else {
                assert_eq!(
                    (r.status, r.code().as_str()),
                    (403, "forbidden"),
                    "{who} may not {method} {path}: {}",
                    r.text
                );
                assert_eq!(events(&api).await, before, "a forbidden request records nothing");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table.len() * TOKENS.len());

    // A county's list shows only that county's applications, even when another is asked for.
    let own = api.get("clerk", "/v1/applications").await.json();
    assert!(own["applications"].as_array().unwrap().iter().all(|a| a["county"] == "371502"));
    assert!(!own["applications"].as_array().unwrap().is_empty());
    assert_eq!(api.get("clerk", "/v1/applications?county=371521").await.status, 403);
    let jining = api.get("finance_jining", "/v1/applications").await.json();
    assert_eq!(jining["applications"], json!([]), "another pool's finance token sees none of them");

    // A revoked token is refused from then on.
    let mut conn = api.db.pool.acquire().await.unwrap();
    fundledger::tokens::revoke(&mut conn, &api.tokens["auditor"]).await.unwrap();
    // The server's copy of the token table is at most this old.
    tokio::time::sleep(fundledger::tokens::TOKEN_REFRESH_INTERVAL).await;
    assert_eq!(api.get("auditor", "/v1/events").await.status, 401);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let api = Api::start().await;
    set_up(&api).await;
    let first = api.post_keyed("clerk", "/v1/applications", "k-1", &training(1)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let count = events(&api).await;

    // The same body, keys in another order and other whitespace: the first answer again.
    let reordered = serde_json::to_string_pretty(&training(1)).unwrap();
    let again = api
        .send(
            "POST",
            "/v1/applications",
            Some("clerk"),
            &[("content-type", "application/json"), ("idempotency-key", "k-1")],
            Some(&reordered),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    assert_eq!(events(&api).await, count, "a replay records nothing");

    let other = api.post_keyed("clerk", "/v1/applications", "k-1", &training(2)).await;
    assert_eq!(
        (other.status, other.code().as_str()),
        (409, "idempotency_conflict"),
        "{}",
        other.text
    );
    assert_eq!(events(&api).await, count);

    // Keys belong to a token: another token's same key is another request.
    let elsewhere = api
        .post_keyed("admin", "/v1/pools", "k-1", &json!({"code": "371600", "name": "滨州市"}))
        .await;
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.text);

    // A refusal is replayed too, status included.
    let refused = api.post_keyed("clerk", "/v1/applications", "k-2", &training(1)).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let replayed = api.post_keyed("clerk", "/v1/applications", "k-2", &training(1)).await;
    assert_eq!((replayed.status, replayed.header("idempotent-replayed")), (409, Some("true")));
    assert_eq!(replayed.json(), refused.json());

    let long = "k".repeat(201);
    let r = api.post_keyed("clerk", "/v1/applications", &long, &training(3)).await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"));
}

/// Copies of one request sent at once (a county system retrying on a flaky network). The key
/// is claimed with the response at the end of the unit of work, so every copy runs; one is
/// recorded, and every other throws its work away and answers with the first's response. A
/// different request under the same key at the same time is refused and records nothing.
#[tokio::test]
async fn copies_of_one_request_sent_at_once_record_it_once_and_answer_alike() {
    let api = Api::start().await;
    set_up(&api).await;
    let applications = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM application_status")
            .fetch_one(&api.db.pool)
            .await
            .unwrap()
    };
    let body = training(7);
    let replies = futures_util::future::join_all(
        (0..8).map(|_| api.post_keyed("clerk", "/v1/applications", "same", &body)),
    )
    .await;
    for r in &replies {
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json(), replies[0].json(), "every copy answers alike");
    }
    let fresh = replies.iter().filter(|r| r.header("idempotent-replayed").is_none()).count();
    assert_eq!(fresh, 1, "one copy recorded, the others replayed");
    assert_eq!(applications().await, 1);

    // Two different requests under one key, four copies of each, at once.
    let bodies = [training(8), training(9)];
    let replies = futures_util::future::join_all(
        (0..8).map(|i| api.post_keyed("clerk", "/v1/applications", "mixed", &bodies[i % 2])),
    )
    .await;
    let created: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    let refused = replies
        .iter()
        .filter(|r| (r.status, r.code()) == (409, "idempotency_conflict".to_string()))
        .count();
    assert_eq!(
        (created.len(), refused),
        (4, 4),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(created.iter().all(|r| r.json() == created[0].json()));
    assert_eq!(applications().await, 2, "one of the two recorded, once");
}

#[tokio::test]
async fn eight_copies_of_one_request_at_one_instant_record_once() {
    let api = std::sync::Arc::new(Api::start().await);
    set_up(&api).await;
    let count = events(&api).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (api, barrier) = (api.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            api.post_keyed("clerk", "/v1/applications", "same-key", &training(77)).await
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies.iter().map(|r| (r.status, r.text.clone())).collect::<Vec<_>>()
    );
    let fresh = replies.iter().filter(|r| r.header("idempotent-replayed").is_none()).count();
    assert_eq!(fresh, 1, "one executes, the other seven replay it");
    let ids: std::collections::BTreeSet<String> =
        replies.iter().map(|r| r.json()["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "all eight see the same application");
    assert_eq!(events(&api).await, count + 1, "exactly one submission recorded");

    // Eight payout requests for one cleared application, without keys, at one instant: one
    // payout, seven `already_paid`.
    let id = replies[0].json()["id"].as_str().unwrap().to_string();
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
    let notice = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await.status,
        200
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (api, barrier, id) = (api.clone(), barrier.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            api.post(
                "finance",
                "/v1/payouts",
                &json!({"application_ids": [id], "paid_on": "2024-11-12"}),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        statuses.push((r.status, if r.status == 201 { String::new() } else { r.code() }));
    }
    statuses.sort();
    let mut expected = vec![(201, String::new())];
    expected.extend((0..7).map(|_| (409, "already_paid".to_string())));
    assert_eq!(statuses, expected);
}

#[tokio::test]
async fn malformed_and_hostile_requests_get_problems_and_record_nothing() {
    let limits = Limits { body_bytes: 64 * 1024, ..Limits::default() };
    let api = Api::start_with(limits).await;
    set_up(&api).await;
    let count = events(&api).await;
    let json_ct: &[(&str, &str)] = &[("content-type", "application/json")];
    // (method, path, headers, body, status, code)
    type Case =
        (&'static str, &'static str, Vec<(&'static str, &'static str)>, String, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/applications",
            json_ct.to_vec(),
            "{\"program\": ".into(),
            400,
            "malformed_json",
        ),
        ("POST", "/v1/applications", json_ct.to_vec(), "[1,2,3]".into(), 422, "validation_failed"),
        (
            "POST",
            "/v1/applications",
            vec![("content-type", "text/plain")],
            training(1).to_string(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/v1/applications",
            vec![],
            training(1).to_string(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/v1/applications",
            json_ct.to_vec(),
            format!("{{\"program\":\"{}\"}}", "x".repeat(70 * 1024)),
            413,
            "body_too_large",
        ),
        ("POST", "/v1/applications", json_ct.to_vec(), "[".repeat(10_000), 400, "malformed_json"),
        (
            "POST",
            "/v1/applications",
            json_ct.to_vec(),
            "{\"program\":\"vocational_training\",\"county\":\"371502\\u0000\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/v1/pools",
            json_ct.to_vec(),
            "{\"code\":370800,\"name\":\"x\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/v1/pools/371500/historical-balance",
            json_ct.to_vec(),
            "{\"as_of\":\"2023-12-31\",\"amount\":1e308,\"document\":\"d\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/v1/pools/371500/historical-balance",
            json_ct.to_vec(),
            "{\"as_of\":\"2023-02-30\",\"amount\":\"1.00\",\"document\":\"d\"}".into(),
            422,
            "validation_failed",
        ),
        ("GET", "/v1/nowhere", vec![], String::new(), 404, "not_found"),
        ("DELETE", "/v1/pools", vec![], String::new(), 405, "method_not_allowed"),
        ("GET", "/v1/events?limit=100000", vec![], String::new(), 422, "validation_failed"),
        // A query parameter of the wrong type is a field like a body's: 422, named.
        ("GET", "/v1/events?after=abc", vec![], String::new(), 422, "validation_failed"),
        ("GET", "/v1/events?afterr=1", vec![], String::new(), 422, "validation_failed"),
        (
            "POST",
            "/v1/persons/subsidies",
            json_ct.to_vec(),
            "{\"id_number\":\"370811199001011234\",\"year\":2024}".into(),
            422,
            "validation_failed",
        ),
    ];
    for (method, path, headers, body, status, code) in cases {
        let who = if path.starts_with("/v1/pools/") || path == "/v1/pools" {
            "admin"
        } else if path.starts_with("/v1/events") {
            "auditor"
        } else {
            "clerk"
        };
        let who = if path.contains("historical-balance") { "finance" } else { who };
        let body = (!body.is_empty()).then_some(body);
        let r = api.send(method, path, Some(who), &headers, body.as_deref()).await;
        assert_eq!(r.status, status, "{method} {path}: {}", &r.text[..r.text.len().min(300)]);
        assert!(
            r.header("content-type").is_some_and(|c| c.starts_with("application/problem+json")),
            "{method} {path}"
        );
        let p = r.json();
        assert_eq!(p["code"], code, "{method} {path}: {p}");
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Garbage that is not HTTP at all does not take the server down.
    let r = raw(api.addr, b"\x00\x01\x02 not http\r\n\r\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(api.get("auditor", "/healthz").await.status, 200);
    assert_eq!(events(&api).await, count, "nothing malformed was recorded");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_of_the_contract_and_only_real_ones() {
    let api = Api::start().await;
    let r = api.send("GET", "/openapi.json", None, &[], None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    // Every route of API.md.
    let contract = [
        ("POST", "/v1/pools"),
        ("POST", "/v1/counties"),
        ("POST", "/v1/pools/{pool}/historical-balance"),
        ("POST", "/v1/pools/{pool}/quotas"),
        ("GET", "/v1/pools/{pool}/quotas/{year}"),
        ("POST", "/v1/applications"),
        ("POST", "/v1/applications/{id}/review"),
        ("POST", "/v1/applications/{id}/withdraw"),
        ("GET", "/v1/applications/{id}"),
        ("POST", "/v1/persons/subsidies"),
        ("GET", "/v1/persons/{id_number}/subsidies"),
        ("POST", "/v1/notices"),
        ("GET", "/v1/notices/{id}"),
        ("POST", "/v1/notices/{id}/objections"),
        ("POST", "/v1/objections/{id}/resolve"),
        ("POST", "/v1/notices/{id}/close"),
        ("POST", "/v1/payouts"),
        ("POST", "/v1/payouts/{id}/settlement"),
        ("POST", "/v1/applications/{id}/recoveries"),
        ("GET", "/v1/events"),
        ("GET", "/v1/audit/verify"),
        ("GET", "/v1/reports/spending"),
        ("POST", "/v1/settlements/import"),
        ("POST", "/v1/periods/{pool}/{month}/seal"),
        ("GET", "/v1/flags"),
        ("GET", "/openapi.json"),
        ("GET", "/healthz"),
    ];
    for (method, path) in contract {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not documented"
        );
    }
    // Every documented route exists on the server: it answers with something other than the
    // router's "no such route" or "method not allowed".
    for (method, path) in &documented {
        if path.ends_with("/live") {
            // A stream that does not end; the live-feed test reads it.
            continue;
        }
        let concrete = path
            .replace("{pool}", "371500")
            .replace("{year}", "2024")
            .replace("{id_number}", "370811199001011236")
            .replace("{id}", "00000000-0000-0000-0000-000000000000");
        let headers: &[(&str, &str)] = &[("content-type", "application/json")];
        let body = (method == "POST").then_some("{}");
        let r = api.send(method, &concrete, Some("admin"), headers, body).await;
        assert_ne!(r.status, 405, "{method} {path} is documented but not served");
        if r.status == 404 {
            assert!(
                !r.text.contains("no such route"),
                "{method} {path} is documented but not served"
            );
        }
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn a_batch_answers_item_by_item_and_one_bad_item_blocks_nothing() {
    let api = Api::start().await;
    set_up(&api).await;
    let batch = json!({"requests": [
        {"path": "/v1/applications", "idempotency_key": "b-1", "body": training(1)},
        {"path": "/v1/applications", "idempotency_key": "b-2", "body": {"program": "lottery"}},
        {"path": "/v1/applications", "idempotency_key": "b-3", "body": training(3)},
        {"method": "GET", "path": "/v1/events", "body": {}},
        {"path": "/v1/pools", "body": {"code": "371600", "name": "x"}},
    ]});
    let r = api.post("clerk", "/v1/batch", &batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json()["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 422, 201, 422, 403]);
    assert_eq!(results[1]["body"]["errors"][0]["field"], "program");
    // Sent again: the keyed items replay, nothing new is recorded.
    let count = events(&api).await;
    let again = api.post("clerk", "/v1/batch", &batch).await.json();
    assert_eq!(again["results"][0]["idempotent_replayed"], true);
    assert_eq!(again["results"][0]["body"], results[0]["body"]);
    assert_eq!(events(&api).await, count);
    let too_many = json!({"requests": (0..101).map(|i| json!({"path": "/v1/applications", "body": training(i)})).collect::<Vec<_>>()});
    let r = api.post("clerk", "/v1/batch", &too_many).await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"));
}

#[tokio::test]
async fn the_live_feed_resumes_after_the_last_event_id_and_skips_nothing() {
    let api = Api::start().await;
    set_up(&api).await;
    let head = events(&api).await;
    let mut stream = tokio::net::TcpStream::connect(api.addr).await.unwrap();
    let request = format!(
        "GET /v1/events/live HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {}\r\nlast-event-id: 3\r\n\r\n",
        api.tokens["auditor"]
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Appends while the reader is connected.
    for person in 0..5 {
        assert_eq!(api.post("clerk", "/v1/applications", &training(person)).await.status, 201);
    }
    let expected = head + 5 - 3;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 65536];
    while seen.matches("\nid: ").count() + usize::from(seen.starts_with("id: ")) < expected as usize
    {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the feed delivers in time")
            .unwrap();
        assert!(n > 0, "the feed closed early");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let ids: Vec<i64> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(ids, (4..=head + 5).collect::<Vec<_>>(), "every position after 3, in order, once");
    assert!(seen.contains("text/event-stream"));
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after_not_a_hang() {
    let options =
        sqlx::postgres::PgConnectOptions::new().host("/nonexistent-socket-dir").database("x");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy_with(options);
    let app = router(AppState::new(pool, Keys::generate(), Limits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let started = std::time::Instant::now();
    for request in [
        "GET /readyz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n".to_string(),
        // A well-formed token must be looked up (a malformed one is a 401 with no lookup).
        format!("POST /v1/pools HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer fl_{}_{}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}", "0".repeat(32), "A".repeat(43)),
    ] {
        let r = raw(addr, request.as_bytes()).await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.header("retry-after"), Some("5"));
        assert_eq!(r.code(), "database_unavailable");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = raw(addr, b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").await;
    assert_eq!(r.status, 200, "liveness does not need the database");
}

#[tokio::test]
async fn readiness_needs_the_database_and_every_migration() {
    let api = Api::start().await;
    let r = api.send("GET", "/readyz", None, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "ready");
}

/// What schemathesis found against `/openapi.json`, each answered as the document says:
/// a NUL character (PostgreSQL stores none) was a 500 in a body; an integer written `2052.0`
/// (an integer to JSON Schema) was refused; a tab inside an Idempotency-Key, a batch item
/// whose body is not an object, and a list cursor that is no id were accepted against the
/// document's schema.
#[tokio::test]
async fn requests_valid_or_invalid_by_the_document_are_answered_as_it_says() {
    let api = Api::start().await;
    set_up(&api).await;
    let count = events(&api).await;
    let json: &[(&str, &str)] = &[("content-type", "application/json")];
    let send = |method: &'static str, path: &'static str, who, headers, body| {
        api.send(method, path, Some(who), headers, body)
    };
    // NUL in a body (was 500), in a query, in a path.
    let r =
        send("POST", "/v1/pools", "admin", json, Some(r#"{"code":"370900","name":"a\u0000b"}"#))
            .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed".to_string()), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "name");
    let r = send("GET", "/v1/policies?on=%00", "admin", &[], None).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed".to_string()), "{}", r.text);
    for path in ["/v1/applications/%00", "/v1/notices/a%00b", "/v1/payouts/batches/%00"] {
        let r = api.send("GET", path, Some("admin"), &[], None).await;
        assert_eq!((r.status, r.code()), (400, "bad_request".to_string()), "{path}: {}", r.text);
    }
    // An integer written as a number with a zero fraction is that integer.
    let body = json!({"id_number": id_number("371502", 0), "year": 2024.0}).to_string();
    let r = send("POST", "/v1/persons/subsidies", "clerk", json, Some(body.as_str())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["year"], 2024);
    let body = json!({"id_number": id_number("371502", 0), "year": 2024.5}).to_string();
    let r = send("POST", "/v1/persons/subsidies", "clerk", json, Some(body.as_str())).await;
    assert_eq!(r.status, 422, "{}", r.text);
    // Years, statuses, cursors and limits out of what the document allows.
    for path in [
        "/v1/reports/spending?pool=371500&year=1999",
        "/v1/applications?status=lost",
        "/v1/applications?after=null",
        "/v1/events/live?limit=100000",
    ] {
        let who = if path.contains("/events") { "auditor" } else { "admin" };
        let r = api.send("GET", path, Some(who), &[], None).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "validation_failed".to_string()),
            "{path}: {}",
            r.text
        );
    }
    // An Idempotency-Key holding a tab is not visible ASCII.
    let keyed: &[(&str, &str)] =
        &[("content-type", "application/json"), ("idempotency-key", "a\tb")];
    let r =
        send("POST", "/v1/pools", "admin", keyed, Some(r#"{"code":"370900","name":"济宁"}"#)).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed".to_string()), "{}", r.text);
    // A batch item's body is an object, as every command's.
    let r = send(
        "POST",
        "/v1/batch",
        "admin",
        json,
        Some(r#"{"requests":[{"path":"/v1/pools","body":[null,null]}]}"#),
    )
    .await;
    assert_eq!((r.status, r.code()), (422, "validation_failed".to_string()), "{}", r.text);
    assert_eq!(events(&api).await, count, "nothing refused was recorded");
}
