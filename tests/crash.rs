//! Issue 15, crash safety of the server: the real `fundledger serve` binary is killed with
//! SIGKILL at random moments while several clients submit, review, notice, pay and settle over
//! HTTP; it is restarted each time, and the clients retry every request that got no answer
//! (or a 503) with the same Idempotency-Key. Afterwards: every acknowledged request is in the
//! log exactly once, no key is recorded twice and each holds the answer its client got, no
//! application is paid more than decided, every read model equals a rebuild, the chain
//! verifies.
//!
//! A kill rarely falls exactly between a commit and its answer, so the clients also throw away
//! one answer in twenty, as if the network had lost it after the commit, and send again: the
//! retry must replay, not record again.
//!
//! `FUNDLEDGER_CRASH_ROUNDS` sets the number of kills (default 3, kept under a minute); the
//! slow suite in README.md runs many more. `FUNDLEDGER_CRASH_FORGETFUL=1` makes the clients
//! retry a submission under a new key, as a client that does not keep its keys would: the
//! checks then find applications recorded twice (how we showed they can fail).

mod chaos;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos::{check, drive, free_port, set_up, tokens_for, Client, Seen, Server};
use fundledger::postgres::testing::{url_of, TestDatabase};
use rand::Rng;

/// Removes the server's directory (keys, log) however the test ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_nothing_and_records_nothing_twice() {
    let started = Instant::now();
    let kills = env_number("FUNDLEDGER_CRASH_ROUNDS", 3);
    let forgetful = std::env::var("FUNDLEDGER_CRASH_FORGETFUL").is_ok_and(|v| v == "1");
    let db = TestDatabase::new().await;
    let url = url_of(&db.name);
    let tokens = tokens_for(&url).await;
    let dir = std::env::temp_dir().join(format!("fundledger-crash-{}", uuid::Uuid::new_v4()));
    let _remove = RemoveOnDrop(dir.clone());
    let port = free_port();
    let mut server = Server::new(url.clone(), &dir, port);
    server.start().await;
    set_up(port, &tokens).await;

    let seen = Arc::new(Seen::default());
    let done = Arc::new(AtomicBool::new(false));
    let client = Client {
        forgets_keys: forgetful,
        drop_answers: 0.05,
        ..Client::new(port, &tokens, seen.clone())
    };
    let clients = drive(&client, 4, 2, &done).await;
    let mut rng = rand::thread_rng();
    let mut downtime = Duration::ZERO;
    for kill in 0..kills {
        // A random moment of the load: a request is mid-way somewhere most of the time.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        server.kill();
        let killed = Instant::now();
        let answered = seen.answered.lock().unwrap().len();
        eprintln!("kill {}: SIGKILL after {answered} answers", kill + 1);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        server.start().await;
        downtime += killed.elapsed();
    }
    done.store(true, Ordering::Relaxed);
    let rounds = clients.await.unwrap();
    server.kill();

    let events = check(&url, &seen).await;
    let answered = seen.answered.lock().unwrap().len();
    let cut_off = seen.cut_off.load(Ordering::Relaxed);
    eprintln!(
        "{kills} kills ({downtime:?} down), {rounds} rounds, {answered} requests answered; sent \
         again: {cut_off} cut off by a kill, {} refused while down, {} after an answer thrown \
         away, {} after a 503; {events} events, longest exchange {} ms, whole test {:?}",
        seen.refused.load(Ordering::Relaxed),
        seen.dropped.load(Ordering::Relaxed),
        seen.unavailable.load(Ordering::Relaxed),
        seen.longest_ms.load(Ordering::Relaxed),
        started.elapsed()
    );
    // The kills fell on requests in flight: otherwise the test proved nothing.
    assert!(cut_off > 0, "no request was ever cut off by a kill");
}
