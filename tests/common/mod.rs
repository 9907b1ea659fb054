//! A test server on a real port over a fresh database, and a minimal HTTP/1.1 client (so the
//! tests exercise what a county system sends over the wire, headers and all).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use fundledger::http::{router, AppState, Limits};
use fundledger::personal::Keys;
use fundledger::postgres::testing::TestDatabase;
use fundledger::publishing::{load_policy_file, publish};
use fundledger::tokens::{self, Role, Scope};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Api {
    pub addr: SocketAddr,
    pub db: TestDatabase,
    pub tokens: HashMap<&'static str, String>,
    /// The personal-data keys the server holds (the key file's, in a real deployment).
    pub keys: Keys,
    /// The server's groups of commands sharing a commit.
    pub groups: std::sync::Arc<fundledger::commands::group::Groups>,
    /// The server's batches of commands executed together.
    pub together: std::sync::Arc<
        fundledger::commands::together::Together<
            fundledger::http::together::Item,
            axum::response::Response,
        >,
    >,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// Token names the tests use, with their roles and scopes. Pool 371500 (聊城市) has counties
/// 371502 and 371521; pool 370800 (济宁市) has 370811.
pub const TOKENS: [(&str, &str, Option<&str>, Option<&str>); 10] = [
    ("admin", "admin", None, None),
    ("auditor", "auditor", None, None),
    ("finance", "city_finance", Some("371500"), None),
    ("finance_jining", "city_finance", Some("370800"), None),
    ("clerk", "county_clerk", None, Some("371502")),
    ("reviewer", "county_reviewer", None, Some("371502")),
    ("clerk_other", "county_clerk", None, Some("371521")),
    ("reviewer_other", "county_reviewer", None, Some("371521")),
    ("clerk_jining", "county_clerk", None, Some("370811")),
    ("reviewer_jining", "county_reviewer", None, Some("370811")),
];

impl Api {
    pub async fn start() -> Api {
        Api::start_with(Limits::default()).await
    }

    pub async fn start_with(limits: Limits) -> Api {
        // Server logs in the test's output (shown for failing tests): the internal errors'
        // causes are there, never in responses.
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
        let db = TestDatabase::new().await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        for f in [
            "liaocheng-2024-training.toml",
            "shandong-2024-expansion-quota.toml",
            "shandong-2024-skill-upgrade.toml",
            "jining-2025-skill-upgrade.toml",
            "shandong-2024-job-stabilization.toml",
            "state-council-holidays.toml",
        ] {
            let path = dir.join(f);
            if path.exists() {
                publish(&db.pool, &load_policy_file(&path).unwrap(), "admin").await.unwrap();
            }
        }
        let mut conn = db.pool.acquire().await.unwrap();
        let mut tokens = HashMap::new();
        for (name, roles, pool, county) in TOKENS {
            let roles: Vec<Role> = roles.split(',').map(|r| Role::parse(r).unwrap()).collect();
            let scope = match (pool, county) {
                (Some(p), _) => Scope::Pool(p.into()),
                (None, Some(c)) => Scope::County(c.into()),
                _ => Scope::All,
            };
            // Each named token is a person of its own.
            let token = tokens::create(&mut conn, &roles, &scope, name, name).await.unwrap();
            tokens.insert(name, token);
        }
        drop(conn);
        let keys = Keys::generate();
        let state = AppState::new(db.pool.clone(), keys.clone(), limits);
        let groups = state.groups.clone();
        let together = state.together.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Api { addr, db, tokens, keys, groups, together }
    }

    pub async fn get(&self, who: &str, path: &str) -> Reply {
        self.send("GET", path, Some(who), &[], None).await
    }

    /// A POST as a client sends it; where money moves, with a fresh Idempotency-Key (the
    /// server requires one there).
    pub async fn post(&self, who: &str, path: &str, body: &Value) -> Reply {
        if fundledger::http::extract::idempotency_required(path) {
            return self.post_keyed(who, path, &uuid::Uuid::new_v4().to_string(), body).await;
        }
        let body = serde_json::to_string(body).unwrap();
        self.send("POST", path, Some(who), &[("content-type", "application/json")], Some(&body))
            .await
    }

    pub async fn post_keyed(&self, who: &str, path: &str, key: &str, body: &Value) -> Reply {
        let body = serde_json::to_string(body).unwrap();
        self.send(
            "POST",
            path,
            Some(who),
            &[("content-type", "application/json"), ("idempotency-key", key)],
            Some(&body),
        )
        .await
    }

    /// A raw request: `who` names a token of [`TOKENS`], or is used as the token itself.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
        if let Some(who) = who {
            let token = self.tokens.get(who).cloned().unwrap_or_else(|| who.to_string());
            request.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        raw(self.addr, request.as_bytes()).await
    }
}

/// [`raw`] with an owned request, for spawned tasks.
pub async fn raw_owned(addr: SocketAddr, request: String) -> Reply {
    raw(addr, request.as_bytes()).await
}

/// Sends bytes as they are and parses the response (Content-Length or chunked).
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    parse(&buf)
}

pub fn parse(buf: &[u8]) -> Reply {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a full response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Reply { status, headers, text: String::from_utf8_lossy(&body).to_string() }
}

/// A valid resident ID number (GB 11643 check character) for person `n`.
pub fn id_number(prefix: &str, n: u32) -> String {
    let body = format!("{prefix}19880{}{:02}{:03}", 1 + n % 9, 1 + n % 28, n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

/// Counts the events in the log: a refusal must leave it unchanged.
pub async fn events(api: &Api) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&api.db.pool).await.unwrap()
}

/// Liaocheng (371500) with counties 371502 and 371521, its balance locked and a 2024 quota;
/// Jining (370800) with 370811.
pub async fn set_up(api: &Api) {
    for (path, body) in [
        ("/v1/pools", json!({"code": "371500", "name": "聊城市"})),
        ("/v1/pools", json!({"code": "370800", "name": "济宁市"})),
        ("/v1/counties", json!({"code": "371502", "name": "东昌府区", "pool": "371500"})),
        ("/v1/counties", json!({"code": "371521", "name": "阳谷县", "pool": "371500"})),
        ("/v1/counties", json!({"code": "370811", "name": "任城区", "pool": "370800"})),
    ] {
        let r = api.post("admin", path, &body).await;
        assert_eq!(r.status, 201, "{path}: {}", r.text);
    }
    let r = api
        .post(
            "finance",
            "/v1/pools/371500/historical-balance",
            &json!({"as_of": "2023-12-31", "amount": "100000.00", "document": "聊人社字〔2024〕1号"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api
        .post(
            "finance",
            "/v1/pools/371500/quotas",
            &json!({"year": 2024, "ratio": "0.15", "filing_document": "鲁人社字〔2024〕9号"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["cap"], "15000.00");
}

pub fn training(person: u32) -> Value {
    json!({
        "program": "vocational_training", "county": "371502", "submitted_on": "2024-10-20",
        "applicant": {"id_number": id_number("371502", person), "name": "王小五"},
        // Insured, not on benefit: the office states the pilot (counts against the cap).
        "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
        "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                     "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 40},
        "funding": "expansion_pilot"
    })
}

/// [`set_up`], then two trainees of 371502 approved and put on one notice: `(ids, notice)`.
pub async fn seed_noticed(api: &Api) -> (Vec<String>, String) {
    set_up(api).await;
    noticed(api, [1, 2]).await
}

/// Trainees of 371502 (600.00 each) submitted, approved and put on one notice starting
/// 2024-11-04: `(ids, notice)`.
pub async fn noticed(api: &Api, persons: impl IntoIterator<Item = u32>) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    for person in persons {
        let r = api.post("clerk", "/v1/applications", &training(person)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
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
            &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": ids}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (ids, r.json()["id"].as_str().unwrap().to_string())
}
