//! The peer: cqrs-es + postgres-es running the framework's simplest command (each command
//! on a new aggregate: load its events, decide, append one event in its own transaction),
//! against the server of benches/ratios.sh, in the same run.
//!
//! Usage: fundledger-bench-peer <postgres URL of an admin database> <clients> <seconds>
//! Prints one line: `figure peer <commands/s> <p50 ms> <p99 ms>`.

use std::fmt::{Display, Formatter};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cqrs_es::{Aggregate, DomainEvent};
use postgres_es::postgres_cqrs;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

/// The aggregate: a counter, the simplest state a command can check.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

#[derive(Debug, Deserialize)]
enum CounterCommand {
    Increment,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Incremented { value: u64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Incremented".to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug)]
struct CounterError(String);

impl Display for CounterError {
    fn fmt(&self, f: &mut Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CounterError {}

#[async_trait]
impl Aggregate for Counter {
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    fn aggregate_type() -> String {
        "Counter".to_string()
    }

    async fn handle(
        &self,
        command: Self::Command,
        _services: &Self::Services,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            CounterCommand::Increment => {
                Ok(vec![CounterEvent::Incremented { value: self.value + 1 }])
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CounterEvent::Incremented { value } => self.value = value,
        }
    }
}

/// postgres-es's own schema (its db/init.sql): one table for all events.
const SCHEMA: &str = "CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence))";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, admin_url, clients, secs] = args.as_slice() else {
        eprintln!("usage: fundledger-bench-peer <admin URL> <clients> <seconds>");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("clients");
    let duration = Duration::from_secs(secs.parse().expect("seconds"));

    let db = format!("peer_{}", std::process::id());
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await.unwrap();
    admin.execute(format!("CREATE DATABASE {db}").as_str()).await.unwrap();
    // Same server and options, the peer's own database (its table is also called `events`).
    let url = admin_url.replacen("/postgres?", &format!("/{db}?"), 1);
    assert_ne!(&url, admin_url, "the admin URL names the database `postgres` before its query");
    let pool =
        PgPoolOptions::new().max_connections(clients as u32 + 2).connect(&url).await.unwrap();
    pool.execute(SCHEMA).await.unwrap();
    let cqrs = Arc::new(postgres_cqrs::<Counter>(pool.clone(), vec![], ()));

    let deadline = Instant::now() + duration;
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (cqrs, barrier) = (cqrs.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                barrier.wait().await;
                for n in 0.. {
                    if Instant::now() >= deadline {
                        break;
                    }
                    // A new aggregate per command, as each submission is a new application: the
                    // load reads no rows and its cost does not grow with the run.
                    let id = format!("counter-{c}-{n}");
                    let t0 = Instant::now();
                    cqrs.execute(&id, CounterCommand::Increment).await.unwrap();
                    latencies.push(t0.elapsed().as_micros() as u64);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    println!("figure peer {:.0} {:.2} {:.2}", all.len() as f64 / elapsed, at(0.5), at(0.99));
    pool.close().await;
    admin.execute(format!("DROP DATABASE {db} WITH (FORCE)").as_str()).await.unwrap();
}
