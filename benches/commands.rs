//! Command throughput: submissions (16 concurrent clients, many persons; one at a time, then
//! executed together as `POST /v1/applications` runs them, FUNDLEDGER_BENCH_LANES queues) and
//! approvals against one pool's quota (the hot path), on an empty log and on a log prefilled
//! with many events, so that a command's cost is seen not to grow with the log.
//!
//! Run: `cargo bench --bench commands` (FUNDLEDGER_BENCH_SECS per measurement, default 10;
//! FUNDLEDGER_BENCH_PREFILL, a comma-separated list of log sizes, default "0,1000000").
//!
//! In the same run, pgbench runs the hot-row limit of approvals against the same server: every
//! client on one counter row (lock it, insert an event-sized row, update it, commit).
//! Approvals are measured three ways, on a third of the submissions each: one at a time (each in
//! its own transaction), sharing commits (`commands::group`: each its own reads and append in
//! one shared transaction, as a county batch's items run) and executed together
//! (`commands::together`: one read, one quota lock and one append per batch, as
//! `POST /v1/applications/{id}/review` runs them).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fundledger::commands::applications::{
    review, review_together, submit, submit_together, PersonApplication, Review, ReviewRequest,
    SubmitRequest,
};
use fundledger::commands::group::Groups;
use fundledger::commands::setup::{lock_balance, register_county, register_pool, set_quota};
use fundledger::commands::together::Together;
use fundledger::commands::Db;
use fundledger::personal::Keys;
use fundledger::postgres::{migrate, writer_pool, Cluster, PoolSettings};
use fundledger::publishing::{load_policy_file, publish};
use policy::{Amount, DivisionCode, Ratio};
use serde_json::json;
use sqlx::{ConnectOptions, Executor, PgPool};

mod common;

const CLIENTS: usize = 16;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn id_number(n: u64) -> String {
    // Address 371502, birth dates over 28 years × 12 months × 28 days, sequence 0-999.
    let birth = format!(
        "{:04}{:02}{:02}",
        1960 + (n / 1000) % 28,
        1 + (n / 28_000) % 12,
        1 + (n / 1000 / 28 / 12) % 28
    );
    let body = format!("371502{birth}{:03}", n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

fn training(person: u64) -> PersonApplication {
    let body = json!({
        "county": "371502", "submitted_on": "2024-10-20",
        "applicant": {"id_number": id_number(person), "name": "测试"},
        // Pilot money, so approvals contend on the quota as before.
        "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
        "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5, "assessment": "certificate",
                     "class_start_on": "2024-09-10", "hours": 40},
        "funding": "expansion_pilot"
    });
    PersonApplication::Training(serde_json::from_value(body).unwrap())
}

struct Rate {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn rate(mut latencies_us: Vec<u64>, elapsed: Duration) -> Rate {
    latencies_us.sort_unstable();
    let at = |p: f64| {
        latencies_us.get(((latencies_us.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0)
            as f64
            / 1000.0
    };
    Rate {
        per_s: latencies_us.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

fn main() {
    let secs: u64 =
        std::env::var("FUNDLEDGER_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let prefills: Vec<u64> = std::env::var("FUNDLEDGER_BENCH_PREFILL")
        .unwrap_or_else(|_| "0,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(Duration::from_secs(secs), prefills));
}

async fn run(duration: Duration, prefills: Vec<u64>) {
    let (cluster, ours_to_stop) = common::bench_cluster();
    println!("| log size before | submissions/s (16 clients) | p50 ms | p99 ms | approvals/s, one pool, one at a time (16 clients) | p50 ms | p99 ms | approvals/s sharing commits | p50 ms | p99 ms | approvals/s executed together | p50 ms | p99 ms | pgbench hot row tx/s (16 clients, one row) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for prefill in prefills {
        let db = format!("bench_commands_{}", uuid::Uuid::new_v4().simple());
        let admin = cluster.connect_options("postgres");
        admin
            .connect()
            .await
            .unwrap()
            .execute(format!("CREATE DATABASE {db}").as_str())
            .await
            .unwrap();
        let owner = cluster.connect_options(&db);
        migrate(&owner).await.unwrap();
        let pool = writer_pool(
            &owner,
            &PoolSettings { max_connections: CLIENTS as u32 + 4, ..PoolSettings::default() },
        )
        .await
        .unwrap();
        fill(&owner, prefill).await;
        setup(&pool).await;
        let keys = Arc::new(Keys::generate());

        let (submitted, subs) = submissions(&pool, &keys, duration, None).await;
        settle(&owner).await;
        // As many queues as the server keeps (`http::together::SUBMISSION_LANES`), unless asked.
        let lanes: u64 = std::env::var("FUNDLEDGER_BENCH_LANES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(fundledger::http::together::SUBMISSION_LANES);
        let (_, subs_together) = submissions(&pool, &keys, duration, Some(lanes)).await;
        common::figure(
            &format!("submissions_together_{prefill}"),
            subs_together.per_s,
            subs_together.p50_ms,
            subs_together.p99_ms,
        );
        println!(
            "submissions executed together ({lanes} lanes, as POST /v1/applications runs them): {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
            subs_together.per_s, subs_together.p50_ms, subs_together.p99_ms
        );
        // A third of the submissions for each way of approving.
        let third = submitted.len() / 3;
        let (alone, rest) = submitted.split_at(third);
        let (shared, together) = rest.split_at(third);
        // Each way starts from the same state: what the one before wrote vacuumed, analysed and
        // checkpointed (else the first after the submissions pays for their checkpoint).
        settle(&owner).await;
        let together = approvals(&pool, together.to_vec(), duration, Approving::Together).await;
        settle(&owner).await;
        let grouped = approvals(&pool, shared.to_vec(), duration, Approving::SharingCommits).await;
        settle(&owner).await;
        let approvals = approvals(&pool, alone.to_vec(), duration, Approving::OneAtATime).await;
        settle(&owner).await;
        let shape = pgbench_hot_row(&cluster, &db, duration);
        common::figure(&format!("submissions_{prefill}"), subs.per_s, subs.p50_ms, subs.p99_ms);
        common::figure(
            &format!("approvals_{prefill}"),
            approvals.per_s,
            approvals.p50_ms,
            approvals.p99_ms,
        );
        common::figure(
            &format!("approvals_grouped_{prefill}"),
            grouped.per_s,
            grouped.p50_ms,
            grouped.p99_ms,
        );
        common::figure(
            &format!("approvals_together_{prefill}"),
            together.per_s,
            together.p50_ms,
            together.p99_ms,
        );
        common::figure(
            &format!("hot_row_pgbench_{prefill}"),
            shape.per_s,
            shape.p50_ms,
            shape.p99_ms,
        );
        println!(
            "| {prefill} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} |",
            subs.per_s,
            subs.p50_ms,
            subs.p99_ms,
            approvals.per_s,
            approvals.p50_ms,
            approvals.p99_ms,
            grouped.per_s,
            grouped.p50_ms,
            grouped.p99_ms,
            together.per_s,
            together.p50_ms,
            together.p99_ms,
            shape.per_s
        );
        pool.close().await;
        admin
            .connect()
            .await
            .unwrap()
            .execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str())
            .await
            .unwrap();
    }
    if ours_to_stop {
        cluster.stop().unwrap();
    }
}

/// Prefills the log with `n` events of unrelated streams and tags, sequenced, as an import
/// would leave them.
async fn fill(owner: &sqlx::postgres::PgConnectOptions, n: u64) {
    if n == 0 {
        return;
    }
    let started = Instant::now();
    let mut conn = owner.connect().await.unwrap();
    const CHUNK: u64 = 250_000;
    let mut done = 0;
    while done < n {
        let m = CHUNK.min(n - done);
        conn.execute(
            format!(
                "WITH ins AS (
                   INSERT INTO events (stream_id, stream_version, event_type, schema_version, data, metadata, tags)
                   SELECT 'filler-' || g, 1, 'Filler', 1, '{{\"n\": 1}}', '{{}}', ARRAY['person:filler' || (g % 100000)]
                     FROM generate_series({done}, {done} + {m} - 1) g
                   RETURNING id, tags)
                 INSERT INTO event_tags (tag, event_id) SELECT tags[1], id FROM ins"
            )
            .as_str(),
        )
        .await
        .unwrap();
        done += m;
        eprintln!("prefilled {done} of {n} events");
    }
    loop {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT fundledger_sequence()").fetch_one(&mut conn).await.unwrap();
        if head == Some(n as i64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conn.execute("VACUUM ANALYZE").await.unwrap();
    eprintln!("prefilled and sequenced {n} events in {:?}", started.elapsed());
}

async fn setup(pool: &PgPool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for f in ["liaocheng-2024-training.toml", "shandong-2024-expansion-quota.toml"] {
        publish(pool, &load_policy_file(&dir.join(f)).unwrap(), "admin").await.unwrap();
    }
    let liaocheng = DivisionCode::parse("371500").unwrap();
    register_pool(pool, &liaocheng, "聊城市", "admin").await.unwrap();
    register_county(pool, &DivisionCode::parse("371502").unwrap(), "东昌府区", &liaocheng, "admin")
        .await
        .unwrap();
    lock_balance(
        pool,
        &liaocheng,
        date("2023-12-31"),
        Amount::parse("100000000000.00").unwrap(),
        "d",
        date("2024-11-20"),
        "f",
    )
    .await
    .unwrap();
    set_quota(pool, &liaocheng, 2024, Ratio::parse("0.15").unwrap(), "f", "f").await.unwrap();
}

/// Submissions by 16 clients, each of its own persons, for `duration`: one at a time, or
/// executed together in `lanes` queues (`commands::together`, as `POST /v1/applications`
/// runs them), a client's persons always in the same lane.
async fn submissions(
    pool: &PgPool,
    keys: &Arc<Keys>,
    duration: Duration,
    lanes: Option<u64>,
) -> (Vec<String>, Rate) {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let together = Together::new();
    let tasks: Vec<_> = (0..CLIENTS as u64)
        .map(|c| {
            let (pool, keys, together) = (pool.clone(), keys.clone(), together.clone());
            tokio::spawn(async move {
                let (mut ids, mut lat) = (Vec::new(), Vec::new());
                let mut n = c + lanes.map_or(0, |_| 1_000_000);
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let today = date("2024-11-20");
                    let id = match lanes {
                        None => {
                            submit(&pool, &keys, &training(n), "clerk", today).await.unwrap().id
                        }
                        Some(lanes) => {
                            let request = SubmitRequest {
                                app: training(n),
                                clerk: "clerk".into(),
                                issuer: None,
                            };
                            let (pool, keys) = (pool.clone(), keys.clone());
                            let execute = |requests: Vec<SubmitRequest>| async move {
                                let mut db = Db::from(&pool);
                                match submit_together(&mut db, &keys, &requests, today).await {
                                    Ok(outcomes) => outcomes
                                        .into_iter()
                                        .map(|o| o.map(|s| s.id).map_err(|e| e.to_string()))
                                        .collect(),
                                    Err(e) => requests.iter().map(|_| Err(e.to_string())).collect(),
                                }
                            };
                            let lane = format!("submit:{}", c % lanes);
                            together.run(&lane, request, execute).await.unwrap().unwrap()
                        }
                    };
                    lat.push(t0.elapsed().as_micros() as u64);
                    ids.push(id);
                    n += CLIENTS as u64;
                }
                (ids, lat)
            })
        })
        .collect();
    let (mut ids, mut lat) = (Vec::new(), Vec::new());
    for t in tasks {
        let (i, l) = t.await.unwrap();
        ids.extend(i);
        lat.extend(l);
    }
    let r = rate(lat, started.elapsed());
    (ids, r)
}

/// Vacuums, analyses and checkpoints the database, as the owner.
async fn settle(owner: &sqlx::postgres::PgConnectOptions) {
    let mut conn = owner.connect().await.unwrap();
    conn.execute("VACUUM ANALYZE").await.unwrap();
    conn.execute("CHECKPOINT").await.unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approving {
    OneAtATime,
    SharingCommits,
    Together,
}

/// Approvals of one pool by 16 clients until `ids` or the time runs out, one of three ways
/// ([`Approving`]).
async fn approvals(pool: &PgPool, ids: Vec<String>, duration: Duration, how: Approving) -> Rate {
    let deadline = Instant::now() + duration;
    let queue = Arc::new(tokio::sync::Mutex::new(ids));
    let groups = Groups::new(pool.clone());
    let together = Together::new();
    let database = pool.connect_options().get_database().unwrap().to_string();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (pool, queue, groups, together, database) =
                (pool.clone(), queue.clone(), groups.clone(), together.clone(), database.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let reviewer = format!("reviewer {c}");
                while Instant::now() < deadline {
                    let Some(id) = queue.lock().await.pop() else { break };
                    let t0 = Instant::now();
                    let today = date("2024-11-20");
                    match how {
                        Approving::OneAtATime => {
                            review(&pool, &id, &Review::Approve, &reviewer, today).await.unwrap();
                        }
                        Approving::SharingCommits => {
                            let mut seat = groups.seat("review:371500").await.unwrap();
                            let db = Db::in_group(&mut seat, &database);
                            review(db, &id, &Review::Approve, &reviewer, today).await.unwrap();
                            seat.keep().await.unwrap();
                        }
                        Approving::Together => {
                            let request = ReviewRequest {
                                id,
                                review: Review::Approve,
                                reviewer: reviewer.clone(),
                                issuer: None,
                            };
                            let pool = pool.clone();
                            let execute = |requests: Vec<ReviewRequest>| async move {
                                match review_together(&mut Db::from(&pool), &requests, today).await
                                {
                                    Ok(outcomes) => outcomes
                                        .into_iter()
                                        .map(|o| o.map(|_| ()).map_err(|e| e.to_string()))
                                        .collect(),
                                    Err(e) => requests.iter().map(|_| Err(e.to_string())).collect(),
                                }
                            };
                            together.run("review:371500", request, execute).await.unwrap().unwrap();
                        }
                    }
                    lat.push(t0.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    rate(lat, started.elapsed())
}

/// The limit of one-at-a-time approvals: pgbench with every client on ONE counter row (as every
/// approval of one pool takes that pool's lock): lock the row, insert an event-sized row,
/// update the counter, commit.
fn pgbench_hot_row(cluster: &Cluster, db: &str, duration: Duration) -> Rate {
    let work =
        std::env::temp_dir().join(format!("fundledger-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).unwrap();
    let script = work.join("hot_row.sql");
    std::fs::write(
        &script,
        "\\set v random(1, 9000000000000000000)\n\
         BEGIN;\n\
         SELECT used FROM bench_counter WHERE id = 1 FOR UPDATE;\n\
         INSERT INTO bench_events (stream_id, stream_version, event_type, schema_version, data, metadata, tags) \
         VALUES ('shape-' || :v, 1, 'ApplicationReviewed', 1, '{\"application\": \"x\", \"decision\": {\"amount\": \"600.00\"}}', '{\"actor\": \"reviewer\"}', '{person-x}');\n\
         UPDATE bench_counter SET used = used + 1 WHERE id = 1;\n\
         COMMIT;\n",
    )
    .unwrap();
    let psql_setup = Command::new(cluster.binaries().path("psql"))
        .args(["-q", "-h"])
        .arg(cluster.socket_dir())
        .args(["-U", fundledger::postgres::cluster::SUPERUSER, db, "-c"])
        .arg(
            "CREATE TABLE IF NOT EXISTS bench_events (LIKE events INCLUDING ALL);
             CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, used bigint NOT NULL);
             INSERT INTO bench_counter VALUES (1, 0) ON CONFLICT DO NOTHING;",
        )
        .output()
        .unwrap();
    assert!(psql_setup.status.success(), "{}", String::from_utf8_lossy(&psql_setup.stderr));
    let out = Command::new(cluster.binaries().path("pgbench"))
        .current_dir(&work)
        .args(["-n", "-M", "prepared", "-l", "--log-prefix", "tx"])
        .args(["-c", &CLIENTS.to_string(), "-j", "4", "-T", &duration.as_secs().to_string()])
        .arg("-f")
        .arg(&script)
        .arg("-h")
        .arg(cluster.socket_dir())
        .args(["-U", fundledger::postgres::cluster::SUPERUSER, db])
        .output()
        .unwrap();
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&work).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("tx.") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            latencies.extend(
                text.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
            );
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let tps: f64 = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .unwrap();
    let mut r = rate(latencies, duration);
    r.per_s = tps;
    r
}
