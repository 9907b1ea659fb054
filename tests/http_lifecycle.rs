//! Every program from submission to settled payout, driven over HTTP against real PostgreSQL,
//! with the refusal codes of the contract along the way, each recording nothing.

mod common;

use common::{events, id_number, set_up, training, Api};
use serde_json::{json, Value};

fn skill_upgrade(person: u32, occupation: &str, level: u8) -> Value {
    json!({
        "program": "skill_upgrade", "county": "371502", "submitted_on": "2024-08-01",
        "applicant": {"id_number": id_number("371502", person), "name": "张三"},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": occupation, "level": level, "number": "S0000371500124",
                        "issued_on": "2024-03-01"}
    })
}

/// A valid unified social credit code (GB 32100) with the given 17 leading characters.
fn credit_code(body: &str) -> String {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let sum: usize = body.chars().zip(WEIGHTS).map(|(c, w)| CHARS.find(c).unwrap() * w).sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", CHARS.chars().nth(check).unwrap())
}

fn refund(code: &str) -> Value {
    json!({
        "program": "job_stabilization_refund", "county": "371502", "submitted_on": "2024-08-01",
        "enterprise": {"credit_code": code, "name": "聊城某机械有限公司", "size": "sme",
                       "kind": "enterprise", "labour_dispatch": false},
        "premiums": {"paid_last_year": "120000.00", "months_paid_in_full": 14},
        "staff": {"insured_employees": 45, "laid_off_last_year": 2}
    })
}

/// Submit, approve, notice (already ended), close, pay, settle: returns the payout id.
async fn through_to_settled(api: &Api, body: &Value) -> (String, String) {
    let person = body.get("applicant").is_some();
    let r = api.post("clerk", "/v1/applications", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let submitted = r.json();
    assert_eq!(submitted["status"], "submitted");
    let id = submitted["id"].as_str().unwrap().to_string();

    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "approved");
    assert_eq!(r.json()["amount"], submitted["amount"]);
    assert!(r.json()["policy"].as_str().is_some_and(|p| !p.is_empty()));

    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let notice = r.json();
    assert_eq!(notice["ends_on"], "2024-11-08");
    let notice_id = notice["id"].as_str().unwrap().to_string();

    let r = api.get("auditor", &format!("/v1/notices/{notice_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let line = &r.json()["lines"][0];
    let name = line["name"].as_str().unwrap();
    // Persons are masked; an enterprise's name is public on a refund notice.
    assert_eq!(name.contains('*'), person, "names of persons are masked on a notice: {name}");
    if let Some(shown) = line["id_number"].as_str().filter(|_| person) {
        assert!(shown.contains("********"), "ID numbers are masked: {shown}");
    }

    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "not_cleared");

    let r = api.post("clerk", &format!("/v1/notices/{notice_id}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["cleared"], json!([id]));

    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let payout = r.json()["payouts"][0]["id"].as_str().unwrap().to_string();
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "already_paid"), "{}", r.text);

    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{payout}/settlement"),
            &json!({"status": "settled", "bank_reference": "B-1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let r = api.get("clerk", &format!("/v1/applications/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let app = r.json();
    assert_eq!(app["status"], "settled");
    let types: Vec<&str> =
        app["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "ApplicationSubmitted",
            "ApplicationApproved",
            "ApplicationNoticed",
            "ApplicationCleared",
            "PayoutIssued",
            "PayoutSettled"
        ]
    );
    assert!(!r.text.contains("_sealed"), "sealed personal data stays out of application views");
    (id, payout)
}

#[tokio::test]
async fn each_program_goes_from_submission_to_settled_payout() {
    let api = Api::start().await;
    set_up(&api).await;

    let (training_id, _) = through_to_settled(&api, &training(1)).await;
    let (_, _) = through_to_settled(&api, &skill_upgrade(2, "4-10-01-05", 4)).await;
    let (_, _) = through_to_settled(&api, &refund(&credit_code("91371500MA3C1234X"))).await;

    // The training subsidy was expansion-pilot money: paid from the quota.
    let r = api.get("finance", "/v1/pools/371500/quotas/2024").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let q = r.json();
    assert_eq!(q["cap"], "15000.00");
    assert_eq!(q["committed"], "0.00");
    assert_ne!(q["paid"], "0.00");
    let paid: rust_decimal::Decimal = q["paid"].as_str().unwrap().parse().unwrap();
    let remaining: rust_decimal::Decimal = q["remaining"].as_str().unwrap().parse().unwrap();
    assert_eq!(paid + remaining, "15000.00".parse().unwrap());

    // A recovery frees quota money.
    let r = api
        .post(
            "finance",
            &format!("/v1/applications/{training_id}/recoveries"),
            &json!({"amount": "100.00", "reason": "复核多发"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let q = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    assert_eq!(q["recovered"], "100.00");

    // The person's subsidies of the year, masked.
    let r = api
        .post(
            "clerk_other",
            "/v1/persons/subsidies",
            &json!({"id_number": id_number("371502", 2), "year": 2024}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = r.json();
    assert_eq!(s["used"], 1);
    assert!(s["limit"].as_u64().is_some_and(|l| l >= 1), "{s}");
    assert!(!r.text.contains(&id_number("371502", 2)), "the full ID number is never shown");

    // The feed has everything, in order, with no gaps. Positions are handed out once every
    // older transaction in the cluster has ended; other tests share it, so the tail may take a
    // moment to appear.
    let total = events(&api).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let feed = loop {
        let r = api.get("auditor", "/v1/events?after=0&limit=1000").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let feed = r.json();
        if feed["events"].as_array().unwrap().len() as i64 == total {
            break feed;
        }
        assert!(std::time::Instant::now() < deadline, "the feed never showed all {total} events");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let positions: Vec<i64> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>());
    assert_eq!(positions.len() as i64, events(&api).await);
    assert_eq!(feed["next_after"], positions.len());
    assert!(feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));
    let v = api.get("auditor", "/v1/audit/verify").await.json();
    assert_eq!(
        (v["ok"].as_bool(), v["events_checked"].as_i64()),
        (Some(true), Some(positions.len() as i64)),
        "{v}"
    );
    assert_eq!(v["signatures_checked"], false, "no public key was configured: {v}");
    let r = api.get("auditor", &format!("/v1/events?after={}&limit=5", positions.len())).await;
    assert_eq!(r.json()["events"], json!([]));
    assert_eq!(r.json()["next_after"], positions.len());

    // The spending report, JSON and CSV.
    let r = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.json()["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3, "one row per program: {rows:?}");
    assert!(rows.iter().all(|row| row["month"] == "2024-11" && row["county"] == "371502"));
    let r = api.get("finance", "/v1/reports/spending?pool=371500&year=2024&format=csv").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(r.text.starts_with('\u{feff}'), "a BOM, so spreadsheet programs read UTF-8");
    // The Chinese header, one line per row, and the totals row.
    assert_eq!(r.text.lines().count(), 5, "{}", r.text);
    assert!(r
        .text
        .contains("月份,县（市、区）,项目,资金来源,笔数,支付金额,退回金额,追回金额,净支出"));
    assert!(r.text.contains("东昌府区（371502）"), "{}", r.text);
}

#[tokio::test]
async fn refusals_carry_their_code_and_field_and_record_nothing() {
    let api = Api::start().await;
    set_up(&api).await;
    let before = events(&api).await;
    let cases: Vec<(&str, &str, Value, u16, &str, &str)> = vec![
        (
            "clerk",
            "/v1/applications",
            {
                let mut b = training(3);
                b["applicant"]["id_number"] = json!("370811199001011234");
                b
            },
            422,
            "validation_failed",
            "applicant.id_number",
        ),
        (
            "clerk",
            "/v1/applications",
            {
                let mut b = training(3);
                b["training"].as_object_mut().unwrap().remove("hours");
                b
            },
            422,
            "validation_failed",
            "training.hours",
        ),
        (
            "clerk",
            "/v1/applications",
            {
                let mut b = training(3);
                b["applicant"]["nickname"] = json!("x");
                b
            },
            422,
            "validation_failed",
            "applicant.nickname",
        ),
        (
            "clerk",
            "/v1/applications",
            {
                let mut b = training(3);
                b["program"] = json!("lottery");
                b
            },
            422,
            "validation_failed",
            "program",
        ),
        (
            "clerk",
            "/v1/applications",
            {
                let mut b = training(3);
                b["submitted_on"] = json!("2099-01-01");
                b
            },
            422,
            "validation_failed",
            "submitted_on",
        ),
        (
            "clerk",
            "/v1/applications",
            {
                // A benefit recipient is the fund's ordinary spending, never the pilot.
                let mut b = training(3);
                b["eligibility"] = json!({"receiving_unemployment_benefit": true});
                b["funding"] = json!("expansion_pilot");
                b
            },
            422,
            "",
            "",
        ),
        (
            "clerk",
            "/v1/applications",
            {
                let mut b = skill_upgrade(3, "4-10-01-05", 4);
                b["submitted_on"] = json!("2025-08-01");
                b["certificate"]["issued_on"] = json!("2024-03-01");
                b
            },
            422,
            "",
            "",
        ),
        (
            "admin",
            "/v1/pools",
            json!({"code": "371500", "name": "again"}),
            409,
            "pool_already_registered",
            "",
        ),
        (
            "admin",
            "/v1/pools",
            json!({"code": "37150", "name": "x"}),
            422,
            "validation_failed",
            "code",
        ),
        (
            "finance",
            "/v1/pools/371500/historical-balance",
            json!({"as_of": "2023-12-31", "amount": "1.00", "document": "again"}),
            409,
            "balance_already_locked",
            "",
        ),
        (
            "finance",
            "/v1/pools/371500/quotas",
            json!({"year": 2024, "ratio": "0.15", "filing_document": "again"}),
            409,
            "quota_already_set",
            "",
        ),
        (
            "finance",
            "/v1/pools/371500/historical-balance",
            json!({"as_of": "2023-12-31", "amount": "1.005", "document": "x"}),
            422,
            "validation_failed",
            "amount",
        ),
        (
            "reviewer",
            "/v1/applications/00000000-0000-0000-0000-000000000000/review",
            json!({"decision": "approve"}),
            // A county's reviewer hears the same 403 for a missing application as for another
            // county's: ids cannot be probed.
            403,
            "forbidden",
            "",
        ),
        (
            "finance",
            "/v1/payouts",
            json!({"application_ids": [], "paid_on": "2024-11-12"}),
            422,
            "validation_failed",
            "application_ids",
        ),
    ];
    for (who, path, body, status, code, field) in cases {
        let r = api.post(who, path, &body).await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.text);
        assert!(
            r.header("content-type").unwrap().starts_with("application/problem+json"),
            "{}",
            r.text
        );
        let p = r.json();
        assert!(!p["detail"].as_str().unwrap().is_empty());
        assert_eq!(p["status"], status);
        if !code.is_empty() {
            assert_eq!(p["code"], code, "{}", r.text);
        } else {
            assert!(
                [
                    "not_eligible",
                    "certificate_window_expired",
                    "validation_failed",
                    "no_policy_in_force"
                ]
                .contains(&p["code"].as_str().unwrap()),
                "{}",
                r.text
            );
        }
        if !field.is_empty() {
            let fields: Vec<&str> = p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&field), "{field} not named in {}", r.text);
        }
    }
    assert_eq!(events(&api).await, before, "a refusal records nothing");

    // Policy refusals at submission, over HTTP.
    let first = api.post("clerk", "/v1/applications", &skill_upgrade(4, "4-10-01-05", 4)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = events(&api).await;
    let again = api.post("clerk", "/v1/applications", &skill_upgrade(4, "4-10-01-05", 4)).await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (409, "occupation_level_already_subsidized"),
        "{}",
        again.text
    );
    let lower = api.post("clerk", "/v1/applications", &skill_upgrade(4, "4-10-01-05", 5)).await;
    assert_eq!(
        (lower.status, lower.code().as_str()),
        (409, "higher_level_already_subsidized"),
        "{}",
        lower.text
    );
    assert_eq!(events(&api).await, before);
    let r = api.post("clerk", "/v1/applications", &skill_upgrade(7, "4-10-01-05", 5)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = events(&api).await;
    let exclusive = api.post("clerk", "/v1/applications", &training(7)).await;
    assert_eq!(exclusive.status, 409, "{}", exclusive.text);
    assert!(
        ["training_and_skill_upgrade_exclusive", "occupation_level_already_subsidized"]
            .contains(&exclusive.code().as_str()),
        "{}",
        exclusive.text
    );
    assert_eq!(events(&api).await, before);

    // Maker-checker, over HTTP: a token that submitted cannot review.
    let id = first.json()["id"].as_str().unwrap().to_string();
    let mut conn = api.db.pool.acquire().await.unwrap();
    let both = fundledger::tokens::create(
        &mut conn,
        &[fundledger::tokens::Role::CountyClerk, fundledger::tokens::Role::CountyReviewer],
        &fundledger::tokens::Scope::County("371502".into()),
        "clerk",
        "clerk",
    )
    .await
    .unwrap();
    let r = api
        .post(&both, &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "self_review_forbidden"), "{}", r.text);
    let r = api
        .post(
            "reviewer",
            &format!("/v1/applications/{id}/review"),
            &json!({"decision": "reject", "reasons": []}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"), "{}", r.text);
    let r = api
        .post(
            "reviewer",
            &format!("/v1/applications/{id}/review"),
            &json!({"decision": "reject", "reasons": ["证书不实"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "rejected");
    let r = api
        .post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "invalid_state"), "{}", r.text);

    // A notice that has not ended cannot be closed.
    let submitted = api.post("clerk", "/v1/applications", &training(5)).await.json();
    let id = submitted["id"].as_str().unwrap();
    api.post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    let today = fundledger::http::today().to_string();
    let r = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": today, "application_ids": [id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let notice = r.json()["id"].as_str().unwrap().to_string();
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "notice_period_not_ended"), "{}", r.text);

    // An upheld objection rejects the application.
    let r = api
        .post(
            "clerk",
            &format!("/v1/notices/{notice}/objections"),
            &json!({"application_id": id, "summary": "实名举报未参训"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let objection = r.json()["id"].as_str().unwrap().to_string();
    let r = api
        .post(
            "reviewer",
            &format!("/v1/objections/{objection}/resolve"),
            &json!({"upheld": true, "note": "查实"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let app = api.get("clerk", &format!("/v1/applications/{id}")).await.json();
    assert_eq!(app["status"], "rejected");
    let n = api.get("clerk", &format!("/v1/notices/{notice}")).await.json();
    assert_eq!(n["objections"][0]["status"], "upheld");

    // A withdrawal, and the county's list.
    let other = api.post("clerk", "/v1/applications", &training(6)).await.json();
    let other_id = other["id"].as_str().unwrap();
    let r = api
        .post(
            "clerk",
            &format!("/v1/applications/{other_id}/withdraw"),
            &json!({"reason": "本人申请撤回"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "withdrawn");
}

#[tokio::test]
async fn the_quota_refuses_approvals_past_its_cap_over_http() {
    let api = Api::start().await;
    set_up(&api).await;
    // 15000.00 of quota; a training subsidy here is well under it, so fill it with many.
    let mut approved = 0;
    let mut refused = None;
    for person in 100..200 {
        let r = api.post("clerk", "/v1/applications", &training(person)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let before = events(&api).await;
        let r = api
            .post(
                "reviewer",
                &format!("/v1/applications/{id}/review"),
                &json!({"decision": "approve"}),
            )
            .await;
        if r.status == 200 {
            approved += 1;
        } else {
            assert_eq!((r.status, r.code().as_str()), (409, "quota_exceeded"), "{}", r.text);
            assert_eq!(events(&api).await, before);
            refused = Some(r.json());
            break;
        }
    }
    let refused = refused.expect("the cap is reached within 100 approvals");
    assert!(refused["detail"].as_str().unwrap().contains("15000.00"), "{refused}");
    let q = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    let committed: rust_decimal::Decimal = q["committed"].as_str().unwrap().parse().unwrap();
    assert!(committed <= "15000.00".parse().unwrap());
    assert!(approved > 0);
}

#[tokio::test]
async fn a_failed_payout_is_reissued_to_a_corrected_account_without_touching_the_quota() {
    let api = Api::start().await;
    set_up(&api).await;
    let id = api.post("clerk", "/v1/applications", &training(9)).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.post("reviewer", &format!("/v1/applications/{id}/review"), &json!({"decision": "approve"}))
        .await;
    let notice = api
        .post(
            "clerk",
            "/v1/notices",
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": [id]}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-12"}))
        .await;
    let failed = r.json()["payouts"][0]["id"].as_str().unwrap().to_string();
    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{failed}/settlement"),
            &json!({"status": "failed", "reason": "账户已销户"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let quota_before = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();

    // Paying the application again the ordinary way is refused, pointing at the reissue.
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": [id], "paid_on": "2024-11-20"}))
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "payout_failed"), "{}", r.text);
    let before = events(&api).await;
    let bad = json!({"account": {"bank": "农行", "number": "12ab"}, "paid_on": "2024-11-20"});
    let r = api.post("finance", &format!("/v1/payouts/{failed}/reissue"), &bad).await;
    assert_eq!(
        (r.status, r.json()["errors"][0]["field"].as_str()),
        (422, Some("account.number")),
        "{}",
        r.text
    );
    assert_eq!(events(&api).await, before);

    let body = json!({"account": {"bank": "中国农业银行聊城分行", "number": "6228 4800 0000 1234"}, "paid_on": "2024-11-20"});
    let r = api.post("finance", &format!("/v1/payouts/{failed}/reissue"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let reissued = r.json();
    assert_eq!(reissued["account"]["number"], "****1234");
    let new = reissued["id"].as_str().unwrap().to_string();
    let raw: String = sqlx::query_scalar(
        "SELECT data::text FROM events WHERE event_type = 'PayoutIssued' AND data->>'payout' = $1",
    )
    .bind(&new)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert!(
        !raw.contains("62284800") && !raw.contains("0000 1234"),
        "the account number is sealed: {raw}"
    );

    // Only once: the failed payout is no longer the application's latest.
    let r = api.post("finance", &format!("/v1/payouts/{failed}/reissue"), &body).await;
    assert_eq!((r.status, r.code().as_str()), (409, "payout_not_failed"), "{}", r.text);
    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{new}/settlement"),
            &json!({"status": "settled", "bank_reference": "B-2"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        api.get("finance", &format!("/v1/applications/{id}")).await.json()["status"],
        "settled"
    );
    assert_eq!(
        api.get("finance", "/v1/pools/371500/quotas/2024").await.json(),
        quota_before,
        "a reissue moves no quota"
    );

    // The report books each movement in its own month: both payouts in November 2024, the
    // failure on the day the bank reported it (today); together a net of one payment.
    let rows = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await.json()
        ["rows"]
        .clone();
    assert_eq!(
        (rows[0]["payouts"].as_i64(), rows[0]["paid"].as_str()),
        (Some(2), Some("1200.00")),
        "{rows}"
    );
    let this_year = fundledger::http::today().format("%Y").to_string();
    let later = api
        .get("finance", &format!("/v1/reports/spending?pool=371500&year={this_year}"))
        .await
        .json()["rows"]
        .clone();
    assert_eq!(
        (later[0]["failed"].as_str(), later[0]["net"].as_str()),
        (Some("600.00"), Some("-600.00")),
        "{later}"
    );
}
