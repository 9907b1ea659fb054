//! Append throughput of the event store against the physical limit of a durable insert.
//!
//! Run: `cargo bench --bench append` (FUNDLEDGER_BENCH_SECS=10 per level by default).
//!
//! Starts a durable private cluster (fsync on, synchronous_commit on) under the temp
//! directory, then for 1, 4, 16 and 64 concurrent writers:
//! - fundledger: each writer appends single events through `store::append`, each with an
//!   expected stream version and a tag condition, one transaction per event;
//! - pgbench, in the same run against the same server: plain INSERTs of the same rows into a
//!   bare table of the same shape (same columns and indexes, no lock, no checks).
//!
//! Prints a Markdown table for BENCHMARKS.md.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::{Metadata, Tag};
use fundledger::postgres::{migrate, writer_pool, PoolSettings};
use fundledger::store::{
    append, read_all, read_point, sequence, Append, AppendCondition, ExpectedVersion, NewEvent,
    Position,
};
use serde_json::json;
use sqlx::{ConnectOptions, Executor};

mod common;

/// Concurrent writers measured, in turn: `FUNDLEDGER_BENCH_WRITERS` (comma-separated), else
/// 1, 4, 16 and 64.
fn writer_levels() -> Vec<usize> {
    std::env::var("FUNDLEDGER_BENCH_WRITERS")
        .unwrap_or_else(|_| "1,4,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

struct Run {
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

fn main() {
    let secs: u64 =
        std::env::var("FUNDLEDGER_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(Duration::from_secs(secs)));
}

async fn run(duration: Duration) {
    let (cluster, ours_to_stop) = common::bench_cluster();
    eprintln!("durable private cluster under {}", cluster.root().display());
    let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let admin = cluster.connect_options("postgres");
    let mut conn = admin.connect().await.unwrap();
    conn.execute(format!("CREATE DATABASE {db}").as_str()).await.unwrap();
    let owner = cluster.connect_options(&db);
    migrate(&owner).await.unwrap();
    let mut owner_conn = owner.connect().await.unwrap();
    owner_conn.execute("CREATE TABLE bare_events (LIKE events INCLUDING ALL)").await.unwrap();
    let settings = PoolSettings { max_connections: 70, ..PoolSettings::default() };
    let pool = writer_pool(&owner, &settings).await.unwrap();

    let sync_commit: String =
        sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&pool).await.unwrap();
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&pool).await.unwrap();
    eprintln!(
        "server: fsync={fsync} synchronous_commit={sync_commit}; {} s per level",
        duration.as_secs()
    );

    let mut rows = Vec::new();
    for writers in writer_levels() {
        let ours = bench_store(&pool, writers, duration).await;
        let bare = bench_pgbench(&cluster, &db, BARE_INSERT, writers, duration);
        let shape = bench_pgbench(&cluster, &db, APPEND_SHAPE, writers, duration);
        eprintln!(
            "{writers:>3} writers: fundledger {:.0} ev/s, bare insert {:.0} rows/s, append via pgbench {:.0}/s",
            ours.events_per_s, bare.events_per_s, shape.events_per_s
        );
        common::figure(
            &format!("raw_append_{writers}"),
            ours.events_per_s,
            ours.p50_ms,
            ours.p99_ms,
        );
        common::figure(
            &format!("bare_insert_{writers}"),
            bare.events_per_s,
            bare.p50_ms,
            bare.p99_ms,
        );
        common::figure(
            &format!("append_pgbench_{writers}"),
            shape.events_per_s,
            shape.p50_ms,
            shape.p99_ms,
        );
        rows.push((writers, ours, bare, shape));
    }

    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let sequencing = Instant::now();
    while sequence(&mut conn).await.unwrap() != Some(Position(total)) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("sequenced the last events in {:?}", sequencing.elapsed());
    let started = Instant::now();
    let mut after = Position::START;
    let mut read = 0usize;
    loop {
        let page = read_all(&mut conn, after, 10_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position.expect("read_all returns sequenced events");
        read += page.len();
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();
    assert_eq!(read as i64, total);

    println!("| writers | fundledger events/s | p50 ms | p99 ms | bare INSERT rows/s (pgbench) | p50 ms | p99 ms | ratio | same append via pgbench /s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (w, ours, bare, shape) in &rows {
        println!(
            "| {w} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0}% | {:.0} |",
            ours.events_per_s,
            ours.p50_ms,
            ours.p99_ms,
            bare.events_per_s,
            bare.p50_ms,
            bare.p99_ms,
            100.0 * ours.events_per_s / bare.events_per_s,
            shape.events_per_s
        );
    }
    println!();
    println!("Reading the log back in pages of 10,000 (`read_all`): {read} events at {read_rate:.0} events/s.");

    pool.close().await;
    let mut conn = admin.connect().await.unwrap();
    conn.execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str()).await.unwrap();
    if ours_to_stop {
        cluster.stop().unwrap();
    }
}

fn bench_event(stream: &str, tag: &Tag) -> NewEvent {
    NewEvent {
        stream_id: stream.to_string(),
        event_type: "BenchHappened".into(),
        schema_version: 1,
        data: json!({ "n": 1 }),
        metadata: Metadata { actor: Some("bench".into()), ..Metadata::default() },
        tags: vec![tag.clone()],
        business_date: None,
    }
}

async fn bench_store(pool: &sqlx::PgPool, writers: usize, duration: Duration) -> Run {
    let deadline = Instant::now() + duration;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let barrier = Arc::new(tokio::sync::Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (pool, barrier, run_id) = (pool.clone(), barrier.clone(), run_id.clone());
            tokio::spawn(async move {
                let stream = format!("bench-{run_id}-{w}");
                let tag = Tag::parse(&format!("bench:{run_id}:{w}")).unwrap();
                let mut version = 0i64;
                let mut latencies = Vec::new();
                barrier.wait().await;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let mut tx = pool.begin().await.unwrap();
                    // A decision reads before it appends; the cheapest read is the read point.
                    let read_at = read_point(&mut tx).await.unwrap();
                    let a = Append {
                        events: vec![bench_event(&stream, &tag)],
                        expected: vec![(
                            stream.clone(),
                            if version == 0 {
                                ExpectedVersion::NoStream
                            } else {
                                ExpectedVersion::Exact(version)
                            },
                        )],
                        condition: Some(AppendCondition {
                            tags: vec![tag.clone()],
                            after: read_at,
                        }),
                    };
                    let out = append(&mut tx, &a).await.unwrap();
                    tx.commit().await.unwrap();
                    latencies.push(t0.elapsed().as_micros() as u64);
                    version = out.events[0].1;
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Run {
        events_per_s: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    }
}

/// The physical limit: one durable INSERT of the same row into a bare table of the same shape.
const BARE_INSERT: &str = "\\set v random(1, 9000000000000000000)\n\
     INSERT INTO bare_events (stream_id, stream_version, event_type, schema_version, data, metadata, tags) \
     VALUES ('bare-' || :client_id || '-' || :v, 1, 'BenchHappened', 1, '{\"n\": 1}', '{\"actor\": \"bench\"}', '{bench}');\n";

/// The store's append transaction driven without the Rust client: what sqlx costs.
const APPEND_SHAPE: &str = include_str!("sql/append_shape.sql");

fn bench_pgbench(
    cluster: &fundledger::postgres::Cluster,
    db: &str,
    script_text: &str,
    clients: usize,
    duration: Duration,
) -> Run {
    let work =
        std::env::temp_dir().join(format!("fundledger-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).unwrap();
    let script = work.join("insert.sql");
    std::fs::write(&script, script_text).unwrap();
    let out = Command::new(cluster.binaries().path("pgbench"))
        .current_dir(&work)
        .args(["-n", "-M", "prepared", "-l", "--log-prefix", "tx"])
        .args(["-c", &clients.to_string(), "-j", &clients.min(4).to_string()])
        .args(["-T", &duration.as_secs().to_string()])
        .arg("-f")
        .arg(&script)
        .arg("-h")
        .arg(cluster.socket_dir())
        .args(["-U", fundledger::postgres::cluster::SUPERUSER, db])
        .output()
        .expect("running pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    latencies.sort_unstable();
    // Count the transactions pgbench logged over the wall time it reports (excluding
    // connection setup), like the store run, which also starts after its pool is warm.
    let tps = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2)?.parse::<f64>().ok())
        .expect("pgbench printed tps");
    Run {
        events_per_s: tps,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    }
}
