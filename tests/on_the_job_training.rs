//! On-the-job training (以工代训, 济政办函〔2021〕16号 item 10) end to end over HTTP against
//! real PostgreSQL: 500 a month per new hire, at most 6 months per person over all claims
//! (read from the trainee's tagged history), SMEs and large enterprises of the listed sectors,
//! trainees' ID numbers sealed.

mod common;

use std::path::Path;

use common::{events, id_number, Api};
use fundledger::publishing::{load_policy_file, publish};
use fundledger::tokens::{self, Role, Scope};
use serde_json::{json, Value};

/// A valid unified social credit code (GB 32100) with the given 17 leading characters.
fn credit_code(body: &str) -> String {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let sum: usize = body.chars().zip(WEIGHTS).map(|(c, w)| CHARS.find(c).unwrap() * w).sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", CHARS.chars().nth(check).unwrap())
}

/// Jinan (370100) with Lixia district (370102), the Jinan 2021 policy, and its clerk,
/// reviewer and finance tokens.
async fn jinan() -> Api {
    let mut api = Api::start().await;
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/jinan-2021-on-the-job-training.toml");
    publish(&api.db.pool, &load_policy_file(&file).unwrap(), "admin").await.unwrap();
    for (path, body) in [
        ("/v1/pools", json!({"code": "370100", "name": "济南市"})),
        ("/v1/counties", json!({"code": "370102", "name": "历下区", "pool": "370100"})),
    ] {
        let r = api.post("admin", path, &body).await;
        assert_eq!(r.status, 201, "{path}: {}", r.text);
    }
    let mut conn = api.db.pool.acquire().await.unwrap();
    for (name, role, scope) in [
        ("clerk_jinan", Role::CountyClerk, Scope::County("370102".into())),
        ("reviewer_jinan", Role::CountyReviewer, Scope::County("370102".into())),
        ("finance_jinan", Role::CityFinance, Scope::Pool("370100".into())),
    ] {
        let token = tokens::create(&mut conn, &[role], &scope, name, name).await.unwrap();
        api.tokens.insert(name, token);
    }
    drop(conn);
    api
}

fn claim(code: &str, size: &str, sector: &str, trainees: Value) -> Value {
    json!({
        "program": "on_the_job_training", "county": "370102", "submitted_on": "2021-09-01",
        "enterprise": {"credit_code": code, "name": "济南某酒店有限公司", "size": size, "sector": sector},
        "trainees": trainees
    })
}

fn trainee(n: u32, months: u32) -> Value {
    json!({"id_number": id_number("370102", n), "name": "赵小六",
           "first_insured_with_enterprise_on": "2021-03-01", "months": months})
}

#[tokio::test]
async fn a_claim_pays_500_a_month_per_trainee_through_to_payout_and_caps_six_months_per_person() {
    let api = jinan().await;
    let hotel = credit_code("91370102MA3C0001A");
    // Two new hires: 6 months and 4 months → 3000 + 2000.
    let r = api
        .post(
            "clerk_jinan",
            "/v1/applications",
            &claim(&hotel, "sme", "accommodation_catering", json!([trainee(1, 6), trainee(2, 4)])),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = r.json();
    assert_eq!(first["amount"], "5000.00");
    assert_eq!(first["funding"], "unemployment_insurance");
    assert_eq!(first["decision"]["lines"].as_array().unwrap().len(), 2);
    let id = first["id"].as_str().unwrap().to_string();

    let stored: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM events").fetch_all(&api.db.pool).await.unwrap();
    for n in [1, 2] {
        let clear = id_number("370102", n);
        assert!(stored.iter().all(|d| !d.contains(&clear)), "trainee ID numbers never in clear");
    }

    let r = api
        .post(
            "reviewer_jinan",
            &format!("/v1/applications/{id}/review"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post(
            "clerk_jinan",
            "/v1/notices",
            &json!({"county": "370102", "starts_on": "2021-10-11", "application_ids": [id]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let notice = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.post("clerk_jinan", &format!("/v1/notices/{notice}/close"), &json!({})).await.status,
        200
    );
    let r = api
        .post(
            "finance_jinan",
            "/v1/payouts",
            &json!({"application_ids": [id], "paid_on": "2021-10-25"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["payouts"][0]["amount"], "5000.00", "{}", r.text);
    // Paid to the enterprise, the applicant.
    assert_eq!(
        r.json()["payouts"][0]["payee"],
        json!({"credit_code": hotel, "name": "济南某酒店有限公司"})
    );

    // A second claim by another enterprise for trainee 2 (4 months used) and a new trainee 3:
    // trainee 2 gets the 2 months left of the 6, trainee 3 the 6 claimed.
    let shop = credit_code("91370102MA3C0002B");
    let r = api
        .post(
            "clerk_jinan",
            "/v1/applications",
            &claim(&shop, "sme", "wholesale_retail", json!([trainee(2, 6), trainee(3, 6)])),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["amount"], "4000.00", "{}", r.text);

    // Trainee 1 has had all 6 months: refused, naming the trainee's field; nothing recorded.
    let before = events(&api).await;
    let r = api
        .post(
            "clerk_jinan",
            "/v1/applications",
            &claim(&shop, "sme", "wholesale_retail", json!([trainee(1, 1)])),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "not_eligible"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "trainees[0].id_number");
    assert!(!r.text.contains(&id_number("370102", 1)), "the refusal masks the ID number");
    assert_eq!(events(&api).await, before);
}

#[tokio::test]
async fn large_enterprises_only_in_the_listed_sectors_and_only_2021_hires() {
    let api = jinan().await;
    let before = events(&api).await;
    let factory = credit_code("91370102MA3C0003C");
    let r = api
        .post(
            "clerk_jinan",
            "/v1/applications",
            &claim(&factory, "large", "other", json!([trainee(4, 3)])),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "not_eligible"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "enterprise.sector");

    let mut old_hire = trainee(5, 3);
    old_hire["first_insured_with_enterprise_on"] = json!("2020-12-01");
    let r = api
        .post(
            "clerk_jinan",
            "/v1/applications",
            &claim(&factory, "sme", "other", json!([old_hire])),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "not_eligible"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "trainees[0].first_insured_with_enterprise_on");
    assert_eq!(events(&api).await, before);

    // A large hotel is covered (住宿餐饮): 3 months × 500.
    let r = api
        .post(
            "clerk_jinan",
            "/v1/applications",
            &claim(&factory, "large", "accommodation_catering", json!([trainee(4, 3)])),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["amount"], "1500.00");
}
