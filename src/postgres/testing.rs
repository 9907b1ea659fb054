//! Databases for the test suite and the benchmarks.
//!
//! With `DATABASE_URL`, every test database is created on that server. Without it, the first
//! test process starts one private cluster under the system temp directory; the others find it
//! running. Test binaries are separate processes, so the start is guarded by a file lock. The
//! cluster stays up between runs (a second run starts in milliseconds); `.ci/run` stops it, and
//! so does `fundledger cluster stop --data-dir "${TMPDIR:-/tmp}/fundledger-test-cluster"`.
//! Each test gets a fresh database of its own, dropped when the test ends.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Executor, PgPool};

use super::{migrate, service_pool, Cluster, Durability, PoolSettings, ServiceLogin};

/// Where the shared test cluster lives: outside any checkout, reachable by the unprivileged
/// account the server runs as when the tests run as root.
pub fn test_cluster_dir() -> PathBuf {
    std::env::temp_dir().join("fundledger-test-cluster")
}

/// Owner options of the server tests use: `DATABASE_URL`, or the shared private cluster.
pub fn admin_options() -> PgConnectOptions {
    static ADMIN: OnceLock<PgConnectOptions> = OnceLock::new();
    ADMIN
        .get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => PgConnectOptions::from_str(&url)
                .expect("DATABASE_URL is not a valid PostgreSQL URL"),
            _ => start_private(&test_cluster_dir(), Durability::Disposable)
                .connect_options("postgres"),
        })
        .clone()
}

/// Starts (creating if needed) a private cluster under `dir`, serialised across processes by
/// a lock file beside it. Panics with the cluster's own message: tests cannot run without it.
pub fn start_private(dir: &std::path::Path, durability: Durability) -> Cluster {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let lock_path = dir.join("start.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
    lock.lock().expect("locking the test cluster");
    let cluster = Cluster::new(dir).unwrap_or_else(|e| panic!("{e}"));
    cluster.init(durability).unwrap_or_else(|e| panic!("{e}"));
    cluster.start().unwrap_or_else(|e| panic!("{e}"));
    drop(lock);
    cluster
}

/// A fresh, migrated database for one test, dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    /// Connections logged in as the service's role, exactly as `serve` logs in.
    pub pool: PgPool,
    /// Options of the database owner (a superuser in the private cluster).
    pub owner: PgConnectOptions,
}

impl TestDatabase {
    pub async fn new() -> Self {
        Self::with_pool(PoolSettings { max_connections: 32, ..PoolSettings::default() }).await
    }

    pub async fn with_pool(settings: PoolSettings) -> Self {
        let admin = admin_options();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.expect("connecting to the test server");
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("creating a test database");
        drop(conn);
        let owner = admin.clone().database(&name);
        migrate(&owner).await.expect("migrating the test database");
        // Exactly as `Database::open` does: the service's login role, never the owner.
        let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
        let login = ServiceLogin::new(url.as_deref(), None).expect("DATABASE_URL");
        let pool = service_pool(&owner, &login, &settings)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test database as the service: {e}"));
        Self { name, pool, owner }
    }

    /// A connection as the owner, which the service never uses: for tests that must act as
    /// an administrator would (e.g. try to TRUNCATE the log).
    pub async fn owner_connection(&self) -> sqlx::PgConnection {
        self.owner.connect().await.expect("owner connection")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_options();
        // Drop runs outside async context; a short-lived thread with its own runtime removes
        // the database (FORCE ends the pool's connections).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async move {
                let mut conn = admin.connect().await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// The owner's URL of the test database `name`, for a process of its own (`serve`, the CLI):
/// on the server of `DATABASE_URL`, or in the tests' private cluster.
pub fn url_of(name: &str) -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let (base, query) =
                url.split_once('?').map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
            let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
            format!("{base}/{name}{}", query.map_or(String::new(), |q| format!("?{q}")))
        }
        _ => super::Cluster::new(&test_cluster_dir()).expect("the tests' cluster").url(name),
    }
}
