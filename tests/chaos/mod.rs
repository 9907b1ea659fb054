//! What the fault tests (tests/crash.rs, tests/db_crash.rs) share: the real `fundledger serve`
//! binary as a child process, clients that retry every request left without an answer with
//! the same Idempotency-Key, and the checks that must hold afterwards whatever was killed.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fundledger::tokens::{self, Role, Scope};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Token names with roles and scopes: Liaocheng (371500), county 东昌府区 (371502).
const TOKENS: [(&str, &str, Option<&str>, Option<&str>); 4] = [
    ("admin", "admin", None, None),
    ("clerk", "county_clerk", None, Some("371502")),
    ("reviewer", "county_reviewer", None, Some("371502")),
    ("finance", "city_finance", Some("371500"), None),
];

/// The server's request timeout in these tests (`--request-timeout`): no client may wait for
/// an answer longer than this (plus the time to connect).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Migrates the database at `url` and creates one token per name of [`TOKENS`], as the owner.
pub async fn tokens_for(url: &str) -> HashMap<&'static str, String> {
    let owner = PgConnectOptions::from_str(url).unwrap();
    fundledger::postgres::migrate(&owner).await.unwrap();
    let mut conn = owner.connect().await.unwrap();
    let mut out = HashMap::new();
    for (name, role, pool, county) in TOKENS {
        let scope = match (pool, county) {
            (Some(p), _) => Scope::Pool(p.into()),
            (None, Some(c)) => Scope::County(c.into()),
            _ => Scope::All,
        };
        let token = tokens::create(&mut conn, &[Role::parse(role).unwrap()], &scope, name, name)
            .await
            .unwrap();
        out.insert(name, token);
    }
    out
}

/// `fundledger serve` on `port` over the database at `url` (empty: the private cluster under
/// `dir/data`), its keys in `dir/keys`, its log appended to `dir/serve.log` (each start adds
/// to it).
pub struct Server {
    pub url: String,
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Server {
    pub fn new(url: String, dir: &Path, port: u16) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Server { url, dir: dir.to_path_buf(), port, child: None }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    /// Starts the binary and waits until it answers `/healthz`.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_fundledger"));
        if self.url.is_empty() {
            command.env_remove("DATABASE_URL");
        } else {
            command.env("DATABASE_URL", &self.url);
        }
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--checkpoint-every", "0", "--token-rate", "0"])
            .args(["--request-timeout", &REQUEST_TIMEOUT.as_secs().to_string()])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--key-dir")
            .arg(self.dir.join("keys"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited early with {status}:\n{}", self.log());
            }
            if let Ok(r) = send(self.port, "GET", "/healthz", None, None, None).await {
                if r.status == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "serve did not come up in 60 s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, and waits: the server finishes, and stops a private cluster it started.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            child.wait().unwrap();
        }
    }

    /// SIGKILL: no shutdown, no finishing of in-flight requests.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
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
}

/// One HTTP/1.1 request on a new connection. `Err` when no complete answer came: refused,
/// reset, closed before the whole body, or nothing within the request timeout and a margin.
pub async fn send(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Option<&Value>,
) -> Result<Reply, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("authorization: Bearer {t}\r\n"));
        }
        if let Some(k) = key {
            req.push_str(&format!("idempotency-key: {k}\r\n"));
        }
        if !body.is_empty() {
            req.push_str("content-type: application/json\r\n");
        }
        req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        parse(&buf)
    };
    // The server ends every request within its timeout; a margin for connecting and writing.
    match tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(5), exchange).await {
        Ok(r) => r,
        Err(_) => Err("no answer within the request timeout".into()),
    }
}

fn parse(buf: &[u8]) -> Result<Reply, String> {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or("closed before a full head")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = &buf[split + 4..];
    if headers.get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("cut in a chunk")?;
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                .map_err(|_| "bad chunk size")?;
            if size == 0 {
                break;
            }
            let chunk = rest.get(eol + 2..eol + 2 + size).ok_or("cut in a chunk")?;
            out.extend_from_slice(chunk);
            rest = rest.get(eol + 4 + size..).ok_or("cut after a chunk")?;
        }
        return Ok(Reply { status, headers, text: String::from_utf8_lossy(&out).into() });
    }
    if let Some(len) = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if body.len() < len {
            return Err(format!("closed after {} of {len} body bytes", body.len()));
        }
    }
    Ok(Reply { status, headers, text: String::from_utf8_lossy(body).into() })
}

/// A valid resident ID number (GB 11643 check character) of county 371502 for person `n`:
/// distinct for every `n` below 13,440,000 (a birth date per thousand, then the sequence).
pub fn id_number(n: u32) -> String {
    let k = n / 1000;
    let (year, month, day) = (1960 + k / 336, 1 + (k / 28) % 12, 1 + k % 28);
    let body = format!("371502{year:04}{month:02}{day:02}{:03}", n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

/// A trainee receiving unemployment benefit: ordinary spending, not capped by the quota, so
/// every round of every client can be paid.
pub fn training(person: u32) -> Value {
    json!({
        "program": "vocational_training", "county": "371502", "submitted_on": "2024-10-20",
        "applicant": {"id_number": id_number(person), "name": "王小五"},
        "eligibility": {"receiving_unemployment_benefit": true},
        "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                     "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 40}
    })
}

/// What the clients saw, shared between them.
#[derive(Default)]
pub struct Seen {
    /// (token name, Idempotency-Key, status, body) of every request that got its answer.
    pub answered: Mutex<Vec<(&'static str, String, u16, Value)>>,
    /// Application ids acknowledged as submitted (201), in the clients' order.
    pub submitted: Mutex<Vec<String>>,
    /// Submissions the clients meant to make (each exactly once).
    pub intended_submissions: AtomicU64,
    /// Requests sent again because the connection was refused (the server was down).
    pub refused: AtomicU64,
    /// Requests sent again because the answer never came: the connection was cut (a kill) or
    /// the exchange ran past the request timeout.
    pub cut_off: AtomicU64,
    /// Answers the clients threw away on purpose, as if the network had lost them after the
    /// commit (what a kill rarely hits exactly), and sent again.
    pub dropped: AtomicU64,
    /// 503 answers, each with its Retry-After.
    pub unavailable: AtomicU64,
    /// Answers with a 5xx other than 503: must stay 0.
    pub server_errors: Mutex<Vec<String>>,
    /// Longest a single exchange took (connect to last byte), in milliseconds.
    pub longest_ms: AtomicU64,
    /// 503 answers that lacked Retry-After: must stay 0.
    pub missing_retry_after: AtomicU64,
}

/// A client: its tokens, and how it retries.
#[derive(Clone)]
pub struct Client {
    pub port: u16,
    pub tokens: Arc<HashMap<&'static str, String>>,
    pub seen: Arc<Seen>,
    /// A faulty client, for showing that the checks can fail: it retries a submission that got
    /// no answer under a NEW Idempotency-Key, as a client that does not keep its keys would.
    pub forgets_keys: bool,
    /// Share of answers thrown away as lost, and the request sent again.
    pub drop_answers: f64,
}

impl Client {
    /// A well-behaved client: keeps its keys, throws no answer away.
    pub fn new(port: u16, tokens: &HashMap<&'static str, String>, seen: Arc<Seen>) -> Self {
        Client {
            port,
            tokens: Arc::new(tokens.clone()),
            seen,
            forgets_keys: false,
            drop_answers: 0.0,
        }
    }

    /// Sends until an answer other than 503 arrives, always with the same Idempotency-Key.
    pub async fn call(&self, who: &'static str, path: &str, body: &Value) -> Reply {
        let mut key = uuid::Uuid::new_v4().to_string();
        let token = self.tokens[who].clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let started = Instant::now();
            let outcome = send(self.port, "POST", path, Some(&token), Some(&key), Some(body)).await;
            self.seen.longest_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            match outcome {
                Ok(r) if r.status == 503 => {
                    self.seen.unavailable.fetch_add(1, Ordering::Relaxed);
                    let after = r.headers.get("retry-after").and_then(|v| v.parse::<u64>().ok());
                    if after.is_none() {
                        self.seen.missing_retry_after.fetch_add(1, Ordering::Relaxed);
                    }
                    // Sooner than asked: the test is about correctness, not politeness.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(r) if r.status >= 500 => {
                    self.seen
                        .server_errors
                        .lock()
                        .unwrap()
                        .push(format!("{path}: {} {}", r.status, r.text));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(_) if rand::random::<f64>() < self.drop_answers => {
                    self.seen.dropped.fetch_add(1, Ordering::Relaxed);
                    if self.forgets_keys && path == "/v1/applications" {
                        key = uuid::Uuid::new_v4().to_string();
                    }
                }
                Ok(r) => {
                    let body = serde_json::from_str(&r.text).unwrap_or(Value::Null);
                    self.seen.answered.lock().unwrap().push((who, key, r.status, body));
                    return r;
                }
                Err(e) => {
                    let counter = if e.starts_with("connect:") {
                        &self.seen.refused
                    } else {
                        &self.seen.cut_off
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if self.forgets_keys && path == "/v1/applications" {
                        key = uuid::Uuid::new_v4().to_string();
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            assert!(Instant::now() < deadline, "{path}: no answer for 120 s");
        }
    }

    fn expect(r: &Reply, status: u16, what: &str) -> Value {
        assert_eq!(r.status, status, "{what}: {}", r.text);
        r.json()
    }

    /// One round: three trainees submitted, approved, put on one notice (already ended),
    /// cleared, paid in one batch, each payout settled.
    pub async fn round(&self, client: u32, round: u32) {
        let mut ids = Vec::new();
        for i in 0..3 {
            let person = client * 100_000 + round * 3 + i;
            assert!(round * 3 + i < 100_000, "too many rounds for distinct persons");
            self.seen.intended_submissions.fetch_add(1, Ordering::Relaxed);
            let r = self.call("clerk", "/v1/applications", &training(person)).await;
            let v = Self::expect(&r, 201, "submission");
            let id = v["id"].as_str().unwrap().to_string();
            self.seen.submitted.lock().unwrap().push(id.clone());
            ids.push(id);
        }
        for id in &ids {
            let r = self
                .call(
                    "reviewer",
                    &format!("/v1/applications/{id}/review"),
                    &json!({"decision": "approve"}),
                )
                .await;
            Self::expect(&r, 200, "review");
        }
        let r = self
            .call(
                "clerk",
                "/v1/notices",
                &json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": ids}),
            )
            .await;
        let notice = Self::expect(&r, 201, "notice")["id"].as_str().unwrap().to_string();
        let r = self.call("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
        let closed = Self::expect(&r, 200, "close");
        assert_eq!(closed["cleared"].as_array().map(Vec::len), Some(ids.len()), "{closed}");
        let r = self
            .call(
                "finance",
                "/v1/payouts",
                &json!({"application_ids": ids, "paid_on": "2024-11-12"}),
            )
            .await;
        let payouts = Self::expect(&r, 201, "payouts");
        for p in payouts["payouts"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            let r = self
                .call(
                    "finance",
                    &format!("/v1/payouts/{id}/settlement"),
                    &json!({"status": "settled", "bank_reference": format!("B-{id}")}),
                )
                .await;
            Self::expect(&r, 200, "settlement");
        }
    }
}

/// Runs `clients` copies of `client`, each doing rounds until `done` is set and it has done
/// at least `min_rounds`; returns the rounds done.
pub async fn drive(
    client: &Client,
    clients: u32,
    min_rounds: u32,
    done: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut round = 0;
            while round < min_rounds || !done.load(Ordering::Relaxed) {
                client.round(c, round).await;
                round += 1;
            }
            round
        }));
    }
    tokio::spawn(async move {
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    })
}

/// Pools and counties, as the admin registers them.
pub async fn set_up(port: u16, tokens: &HashMap<&'static str, String>) {
    let client = Client::new(port, tokens, Arc::new(Seen::default()));
    for (path, body) in [
        ("/v1/pools", json!({"code": "371500", "name": "聊城市"})),
        ("/v1/counties", json!({"code": "371502", "name": "东昌府区", "pool": "371500"})),
    ] {
        let r = client.call("admin", path, &body).await;
        assert_eq!(r.status, 201, "{path}: {}", r.text);
    }
}

/// Every read-model table as sorted JSON rows.
pub async fn tables(conn: &mut PgConnection) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in fundledger::read_models::TABLES {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        out.insert(*table, rows);
    }
    out
}

/// The invariants that must hold after any fault, checked as the owner of the database at
/// `url`. Returns the number of events in the log.
pub async fn check(url: &str, seen: &Seen) -> i64 {
    let owner = PgConnectOptions::from_str(url).unwrap();
    let mut conn = owner.connect().await.unwrap();

    let errors = seen.server_errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "answers with a 5xx other than 503: {errors:#?}");
    assert_eq!(seen.missing_retry_after.load(Ordering::Relaxed), 0, "a 503 without Retry-After");

    // Every acknowledged submission is in the log exactly once, and nothing else was
    // submitted: a request recorded twice (a retry that did not replay) shows here.
    let submitted = seen.submitted.lock().unwrap().clone();
    let intended = seen.intended_submissions.load(Ordering::Relaxed) as usize;
    assert_eq!(submitted.len(), intended, "every submission was acknowledged in the end");
    let mut logged: Vec<(String, i64)> = sqlx::query_as(
        "SELECT data->>'application', count(*) FROM events \
         WHERE event_type = 'ApplicationSubmitted' GROUP BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    logged.sort();
    let twice: Vec<_> = logged.iter().filter(|(_, n)| *n != 1).collect();
    assert!(twice.is_empty(), "applications submitted more than once: {twice:?}");
    let mut acknowledged = submitted.clone();
    acknowledged.sort();
    let logged_ids: Vec<String> = logged.into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        logged_ids.len(),
        intended,
        "{} submissions in the log for {intended} the clients made: a retry recorded twice",
        logged_ids.len()
    );
    assert_eq!(logged_ids, acknowledged, "the log holds exactly the acknowledged submissions");

    // Each stream's events exactly once per step of the lifecycle.
    let repeated: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT data->>'application', event_type, count(*) FROM events \
         WHERE event_type IN ('ApplicationApproved', 'ApplicationNoticed', 'ApplicationCleared', \
                              'PayoutIssued', 'PayoutSettled') \
         GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(repeated.is_empty(), "a step recorded twice for one application: {repeated:?}");

    // No application paid more than was decided for it.
    let overpaid: Vec<(String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT a.data->>'application', (a.data->>'amount')::numeric, \
                coalesce(sum((p.data->>'amount')::numeric), 0) \
         FROM events a LEFT JOIN events p \
           ON p.event_type = 'PayoutIssued' AND p.data->>'application' = a.data->>'application' \
         WHERE a.event_type = 'ApplicationApproved' \
         GROUP BY 1, 2 HAVING coalesce(sum((p.data->>'amount')::numeric), 0) > (a.data->>'amount')::numeric",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(overpaid.is_empty(), "paid more than decided: {overpaid:?}");

    // Every answer a client holds is the one the ledger remembers under its key, and each key
    // is there once (the primary key), finished (status set in the same transaction).
    let answered = seen.answered.lock().unwrap().clone();
    let mut keys = std::collections::HashSet::new();
    for (who, key, status, body) in &answered {
        assert!(keys.insert((*who, key.clone())), "a client used key {key} twice");
        let token_id: uuid::Uuid =
            sqlx::query_scalar("SELECT id FROM api_tokens WHERE person = $1")
                .bind(*who)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let rows: Vec<(i16, Value)> = sqlx::query_as(
            "SELECT status, response FROM idempotency_keys WHERE token_id = $1 AND key = $2",
        )
        .bind(token_id)
        .bind(key)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "key {key} of {who} recorded {} times", rows.len());
        assert_eq!(
            (rows[0].0 as u16, &rows[0].1),
            (*status, body),
            "the answer to key {key} differs from what the ledger stored"
        );
    }
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE status = 0")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(unfinished, 0, "a key claimed by a transaction that never finished");

    // Every read model equals a rebuild from the log alone.
    let live = tables(&mut conn).await;
    fundledger::rebuild::rebuild(&mut conn, |_| {}).await.unwrap();
    let rebuilt = tables(&mut conn).await;
    for (table, rows) in &live {
        assert_eq!(rows, &rebuilt[table], "{table}: live differs from a rebuild");
    }
    assert!(live["payouts"].len() >= intended, "every application was paid");

    // The chain verifies from genesis to the head, every event in it.
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut conn).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = fundledger::store::sequence(&mut conn).await.unwrap();
        if head.map(|p| p.0) == Some(total) {
            break;
        }
        assert!(Instant::now() < deadline, "positions never reached every event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = fundledger::audit::verify(&mut conn, None, |_| {}).await.unwrap();
    assert!(v.ok, "the chain does not verify: {:?}", v.first_bad);
    assert_eq!(v.events_checked, total);
    total
}
