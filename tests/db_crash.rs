//! Issue 15, the database killed mid-load: a private PostgreSQL cluster this test owns (never
//! the shared test cluster) is stopped with an immediate shutdown (`pg_ctl stop -m immediate`:
//! SIGQUIT to the postmaster, no checkpoint, crash recovery on the next start) while clients
//! submit, review, notice, pay and settle through the real `fundledger serve`. While it is
//! down every answer is 503 with Retry-After (never a 500, never a request held past its
//! timeout); once it is started again the service recovers by itself (nobody restarts it), and
//! the checks of tests/crash.rs hold.
//!
//! `FUNDLEDGER_CRASH_ROUNDS` sets the number of stops (default 2).

mod chaos;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos::{
    check, drive, free_port, send, set_up, tokens_for, Client, Seen, Server, REQUEST_TIMEOUT,
};
use fundledger::postgres::{Cluster, Durability};

/// Stops the cluster and removes its directory, however the test ends.
struct Owned {
    cluster: Cluster,
    root: PathBuf,
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What `pg_ctl stop -m immediate` does, without running as the server's account: SIGQUIT to
/// the postmaster. Waits until it is gone.
fn stop_immediately(cluster: &Cluster) {
    let pid_file = cluster.pgdata().join("postmaster.pid");
    let pid =
        std::fs::read_to_string(&pid_file).unwrap().lines().next().unwrap().trim().to_string();
    let status = std::process::Command::new("kill").args(["-QUIT", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && cluster.is_running() {
        assert!(Instant::now() < deadline, "the postmaster did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_immediately_mid_load_gives_503_then_recovers_with_nothing_lost() {
    let started = Instant::now();
    let stops = std::env::var("FUNDLEDGER_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok());
    let stops: u32 = stops.unwrap_or(2);
    let root = std::env::temp_dir().join(format!("fundledger-dbcrash-{}", uuid::Uuid::new_v4()));
    // Durable: commits are flushed, as in production; the immediate stop relies on the WAL.
    let cluster = fundledger::postgres::testing::start_private(&root, Durability::Durable);
    let owned = Owned { cluster, root: root.clone() };
    fundledger::postgres::create_database_if_missing(
        &owned.cluster.connect_options("postgres"),
        "fundledger",
    )
    .await
    .unwrap();
    let url = owned.cluster.url("fundledger");
    let tokens = tokens_for(&url).await;
    let port = free_port();
    let mut server = Server::new(url.clone(), &root.join("serve"), port);
    server.start().await;
    set_up(port, &tokens).await;

    let seen = Arc::new(Seen::default());
    let done = Arc::new(AtomicBool::new(false));
    let client = Client::new(port, &tokens, seen.clone());
    let clients = drive(&client, 4, 2, &done).await;
    let mut probes_503 = 0;
    for stop in 0..stops {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let before = seen.answered.lock().unwrap().len();
        stop_immediately(&owned.cluster);
        let down = Instant::now();
        eprintln!("stop {}: immediate shutdown after {before} answers", stop + 1);
        // While it is down: a probe of readiness and of a read, each answered in bounded time
        // with 503 and Retry-After.
        while down.elapsed() < Duration::from_secs(3) {
            for path in ["/readyz", "/v1/pools/371500/quotas/2024"] {
                let sent = Instant::now();
                let r = send(port, "GET", path, Some(&tokens["finance"]), None, None)
                    .await
                    .unwrap_or_else(|e| panic!("{path} while the database is down: {e}"));
                assert!(
                    sent.elapsed() < REQUEST_TIMEOUT,
                    "{path} took {:?} while the database was down",
                    sent.elapsed()
                );
                assert_eq!(r.status, 503, "{path} while the database is down: {}", r.text);
                assert!(
                    r.headers.get("retry-after").is_some_and(|v| v.parse::<u32>().is_ok()),
                    "{path}: 503 without Retry-After: {:?}",
                    r.headers
                );
                probes_503 += 1;
            }
        }
        let during = seen.answered.lock().unwrap().len();
        owned.cluster.start().unwrap();
        // Recovered by itself: readiness comes back and the clients make progress again.
        let restarted = Instant::now();
        loop {
            let ready = send(port, "GET", "/readyz", None, None, None).await;
            if ready.is_ok_and(|r| r.status == 200) {
                break;
            }
            assert!(restarted.elapsed() < Duration::from_secs(30), "not ready 30 s after");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while seen.answered.lock().unwrap().len() < during + 10 {
            assert!(restarted.elapsed() < Duration::from_secs(30), "no progress 30 s after");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "stop {}: down {:?}, {} answers while down, ready again {:?} after the restart",
            stop + 1,
            restarted - down,
            during - before,
            restarted.elapsed()
        );
    }
    done.store(true, Ordering::Relaxed);
    let rounds = clients.await.unwrap();
    server.kill();

    let events = check(&url, &seen).await;
    let unavailable = seen.unavailable.load(Ordering::Relaxed);
    let cut_off = seen.cut_off.load(Ordering::Relaxed);
    eprintln!(
        "{stops} stops, {rounds} rounds, {} requests answered, {unavailable} 503s to clients and \
         {probes_503} to probes, {cut_off} cut off, {events} events, longest exchange {} ms, \
         whole test {:?}",
        seen.answered.lock().unwrap().len(),
        seen.longest_ms.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(unavailable > 0, "no client request met the database down");
    assert_eq!(cut_off, 0, "the server never dies here: every request gets an answer");
    assert!(
        seen.longest_ms.load(Ordering::Relaxed) < REQUEST_TIMEOUT.as_millis() as u64,
        "a request hung past the request timeout"
    );
    drop(server);
    drop(owned);
}
