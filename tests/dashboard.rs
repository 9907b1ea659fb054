//! The dashboard over HTTP, as a browser sends it: sign-in sets the cookie, each page shows
//! what the API states (the gauge's figures are the quota's, the notice masks every ID number),
//! scope is the API's, and the cookie never authorises a POST to the API.

mod common;

use common::{id_number, set_up, training, Api, Reply};
use serde_json::{json, Value};

/// Signs in through the form and returns the `Cookie` header to send.
async fn sign_in(api: &Api, who: &str) -> String {
    let token = api.tokens[who].clone();
    let body = format!("token={token}");
    let r = api
        .send(
            "POST",
            "/signin",
            None,
            &[("content-type", "application/x-www-form-urlencoded"), ("origin", "http://test")],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location"), Some("/"));
    let cookie = r.header("set-cookie").expect("a cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

async fn page(api: &Api, cookie: &str, path: &str) -> Reply {
    api.send("GET", path, None, &[("cookie", cookie)], None).await
}

/// The text of the element carrying `data-field="<field>"` after `from` in the page.
fn field<'a>(html: &'a str, from: usize, name: &str) -> &'a str {
    let marker = format!("data-field=\"{name}\">");
    let start = html[from..].find(&marker).unwrap_or_else(|| panic!("no {name} in the page"))
        + from
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    &html[start..end]
}

/// Checks every gauge of `year` in the page against the quota the API states.
fn gauge_equals_quota(html: &str, quota: &Value) {
    let marker = format!(
        "data-pool=\"{}\" data-year=\"{}\"",
        quota["pool"].as_str().unwrap(),
        quota["year"]
    );
    let at = html.find(&marker).unwrap_or_else(|| panic!("no gauge {marker}"));
    for f in ["cap", "committed", "paid", "recovered", "remaining"] {
        assert_eq!(field(html, at, f), quota[f].as_str().unwrap(), "{f}");
    }
}

/// Whether `text` holds anything that reads as a full resident ID number (17 digits and a
/// check character).
fn has_full_id_number(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(17)).any(|i| {
        b[i..i + 17].iter().all(u8::is_ascii_digit)
            && (b[i + 17].is_ascii_digit() || b[i + 17] == b'X')
    })
}

#[tokio::test]
async fn a_person_signs_in_and_every_page_shows_what_the_api_states_within_scope() {
    let api = Api::start().await;
    set_up(&api).await;

    // Without a session, `/` is the sign-in page; a wrong token is told so.
    let r = api.send("GET", "/", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("action=\"/signin\"") && r.text.contains("访问令牌"), "{}", r.text);
    let r = api
        .send(
            "POST",
            "/signin",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("token=fl_nonsense"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("令牌无效") && r.header("set-cookie").is_none(), "{}", r.text);
    // A form posted from another site does not sign in.
    let token = api.tokens["finance"].clone();
    let r = api
        .send(
            "POST",
            "/signin",
            None,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "http://evil.example"),
            ],
            Some(&format!("token={token}")),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());

    // Two approved trainees, noticed.
    let (ids, notice) = common::noticed(&api, [1, 2]).await;
    let r = api
        .post(
            "admin",
            "/v1/counties",
            &json!({"code": "371599", "name": "<script>alert(1)</script>新区", "pool": "371500"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // The finance bureau: the gauge's figures are the quota's, on the overview and the pool page.
    let finance = sign_in(&api, "finance").await;
    let quota = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    assert_ne!(quota["committed"], "0.00", "the approvals are committed: {quota}");
    let home = page(&api, &finance, "/").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.header("content-type").unwrap().starts_with("text/html"));
    gauge_equals_quota(&home.text, &quota);
    assert!(home.text.contains("聊城市"), "pool names, not only codes");
    assert!(!home.text.contains("济宁市"), "another pool is out of the city's scope");
    let pool = page(&api, &finance, "/pools/371500").await;
    assert_eq!(pool.status, 200, "{}", pool.text);
    gauge_equals_quota(&pool.text, &quota);
    assert!(pool.text.contains("东昌府区") && pool.text.contains("阳谷县"));
    // Whatever a name holds is shown as text, never as markup.
    assert!(pool.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;新区"), "{}", pool.text);
    assert!(!pool.text.contains("<script>"));
    assert_eq!(page(&api, &finance, "/pools/370800").await.status, 403);

    // The application page names the rule and clause that decided the amount, as recorded.
    let app = api.get("finance", &format!("/v1/applications/{}", ids[0])).await.json();
    let decision = &app["events"][0]["data"]["decision"];
    let shown = page(&api, &finance, &format!("/applications/{}", ids[0])).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    for f in ["amount_rule", "funding_rule"] {
        let rule = decision[f].as_str().unwrap();
        assert!(!rule.is_empty());
        assert_eq!(
            field(&shown.text, 0, f),
            maud::html! { (rule) }.into_string(),
            "{f} as recorded"
        );
    }
    assert_eq!(field(&shown.text, 0, "amount"), decision["amount"].as_str().unwrap());
    assert!(!has_full_id_number(&shown.text), "no full ID number on the application page");

    // The printable notice: the API's masked lines, and no full ID number or clear name.
    let api_notice = api.get("clerk", &format!("/v1/notices/{notice}")).await.json();
    let clerk = sign_in(&api, "clerk").await;
    let printed = page(&api, &clerk, &format!("/notices/{notice}")).await;
    assert_eq!(printed.status, 200, "{}", printed.text);
    assert!(printed.text.contains("@media print"));
    for line in api_notice["lines"].as_array().unwrap() {
        assert!(printed.text.contains(line["id_number"].as_str().unwrap()), "{line}");
        assert!(printed.text.contains(line["amount"].as_str().unwrap()), "{line}");
    }
    assert_eq!(printed.text.matches("<tr class=\"line\">").count(), 2);
    for person in [1, 2] {
        assert!(!printed.text.contains(&id_number("371502", person)));
    }
    assert!(!has_full_id_number(&printed.text), "every ID number is masked");
    assert!(!printed.text.contains("王小五"), "names are masked");

    // A county's staff: their county's work on the overview; no quota, no other county.
    let home = page(&api, &clerk, "/").await;
    assert!(home.text.contains(&format!("/applications/{}", ids[1])), "{}", home.text);
    assert!(!home.text.contains("data-field=\"cap\""), "quotas are the city's and above");
    assert_eq!(page(&api, &clerk, "/pools/371500").await.status, 403);
    let other = sign_in(&api, "clerk_other").await;
    let r = page(&api, &other, &format!("/applications/{}", ids[0])).await;
    assert_eq!(r.status, 403);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(page(&api, &other, &format!("/notices/{notice}")).await.status, 403);
    assert_eq!(page(&api, &clerk, "/audit").await.status, 403);

    // The auditor sees the chain verified, as the API does.
    let auditor = sign_in(&api, "auditor").await;
    let verify = api.get("auditor", "/v1/audit/verify").await.json();
    let audit = page(&api, &auditor, "/audit").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert!(audit.text.contains("id=\"verify\">通过"), "{}", audit.text);
    assert!(
        audit.text.contains(&format!("id=\"events_checked\">{}<", verify["events_checked"])),
        "{}",
        audit.text
    );

    // The cookie reads the API (the dashboard links its reports) but never writes through it.
    let r = page(&api, &finance, "/v1/reports/spending?pool=371500&year=2024&format=csv").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = serde_json::to_string(&training(3)).unwrap();
    let r = api
        .send(
            "POST",
            "/v1/applications",
            None,
            &[("cookie", clerk.as_str()), ("content-type", "application/json")],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);

    // Signing out clears the cookie; a revoked or unknown cookie is the sign-in page.
    let r = api.send("POST", "/signout", None, &[("cookie", finance.as_str())], None).await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let r = page(&api, "fundledger_session=fl_unknown", "/pools/371500").await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("action=\"/signin\""));
}

/// The text of the element with `id="<id>"` in the page.
fn by_id<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {id} in the page")) + marker.len();
    &html[start..html[start..].find('<').unwrap() + start]
}

#[tokio::test]
async fn the_trial_balance_page_shows_what_the_api_states_for_the_month() {
    let api = Api::start().await;
    set_up(&api).await;
    let mut ids = Vec::new();
    for person in [31, 32] {
        let r = api.post("clerk", "/v1/applications", &training(person)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let path = format!("/v1/applications/{id}/review");
        let r = api.post("reviewer", &path, &json!({"decision": "approve"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(id);
    }
    let body = json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": ids});
    let notice =
        api.post("clerk", "/v1/notices", &body).await.json()["id"].as_str().unwrap().to_string();
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": ids, "paid_on": "2024-11-12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let finance = sign_in(&api, "finance").await;
    let pool = page(&api, &finance, "/pools/371500").await;
    assert!(pool.text.contains("href=\"/pools/371500/trial-balance/2024-11\""), "{}", pool.text);
    let json =
        api.get("finance", "/v1/reports/trial-balance?pool=371500&month=2024-11").await.json();
    let shown = page(&api, &finance, "/pools/371500/trial-balance/2024-11").await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(by_id(&shown.text, "balanced"), "借贷平衡");
    assert_eq!(by_id(&shown.text, "total_debit"), json["total_debit"].as_str().unwrap());
    assert_eq!(by_id(&shown.text, "total_credit"), json["total_credit"].as_str().unwrap());
    assert_eq!(json["total_debit"], "1200.00");
    for line in json["lines"].as_array().unwrap() {
        let account = line["account"].as_str().unwrap();
        assert!(shown.text.contains(line["label"].as_str().unwrap()));
        for side in ["debit", "credit", "balance"] {
            let id = format!("{side}-{account}");
            assert_eq!(by_id(&shown.text, &id), line[side].as_str().unwrap(), "{id}");
        }
    }
    let auditor = sign_in(&api, "auditor").await;
    assert_eq!(page(&api, &auditor, "/pools/371500/trial-balance/2024-11").await.status, 200);
    let jining = sign_in(&api, "finance_jining").await;
    assert_eq!(page(&api, &jining, "/pools/371500/trial-balance/2024-11").await.status, 403);
    assert_eq!(page(&api, &finance, "/pools/371500/trial-balance/2024-13").await.status, 422);
}
