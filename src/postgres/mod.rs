//! Connecting to PostgreSQL: a server given by `DATABASE_URL`, or a private cluster started
//! from the server binaries on this machine. Migrations run before anything else.

pub mod cluster;
pub mod testing;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};

pub use cluster::{Cluster, ClusterError, Durability};

/// Migrations embedded in the binary: `migrations/` at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The role the service writes with: SELECT and INSERT on the log, nothing more.
pub const WRITER_ROLE: &str = "fundledger_writer";

/// Name of the database inside a private cluster.
pub const PRIVATE_DATABASE: &str = "fundledger";

/// A transaction left idle this long is ended by the server, so a stuck client cannot hold the
/// append lock (and with it every writer) for longer.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The service's database: the writer pool and, when we started it, the private cluster.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    /// The owner connection options, for migrations and administrative commands.
    pub owner: PgConnectOptions,
    cluster: Option<(Cluster, bool)>,
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

impl Database {
    /// Opens `url`, or starts (creating on first use) the private cluster under `data_dir`.
    pub async fn open(
        url: Option<&str>,
        data_dir: &Path,
        settings: &PoolSettings,
    ) -> Result<Self, DatabaseError> {
        let (owner, cluster) = match url {
            Some(url) => (PgConnectOptions::from_str(url).map_err(DatabaseError::BadUrl)?, None),
            None => {
                let cluster = Cluster::new(data_dir)?;
                let fresh = !cluster.is_initialized();
                if fresh {
                    tracing::info!(data_dir = %cluster.root().display(), "creating a private PostgreSQL cluster");
                }
                cluster.init(Durability::Durable)?;
                let started = cluster.start()?;
                tracing::info!(
                    pgdata = %cluster.pgdata().display(),
                    socket = %cluster.socket_dir().display(),
                    reused = !fresh,
                    "private PostgreSQL cluster is up"
                );
                (cluster.connect_options(PRIVATE_DATABASE), Some((cluster, started)))
            }
        };
        let ready = async {
            if let Some((cluster, _)) = &cluster {
                create_database_if_missing(&cluster.connect_options("postgres"), PRIVATE_DATABASE)
                    .await?;
            }
            migrate(&owner).await?;
            writer_pool(&owner, settings).await
        };
        match ready.await {
            Ok(pool) => Ok(Self { pool, owner, cluster }),
            Err(e) => {
                // Nobody else will stop a cluster we started for a database we cannot use.
                if let Some((cluster, true)) = cluster {
                    let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
                }
                Err(e)
            }
        }
    }

    /// Closes the pool and stops the private cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some((cluster, true)) = self.cluster {
            tracing::info!("stopping the private PostgreSQL cluster");
            if let Err(e) =
                tokio::task::spawn_blocking(move || cluster.stop()).await.expect("stop task")
            {
                tracing::error!(error = %e, "stopping the private PostgreSQL cluster failed");
            }
        }
    }
}

pub async fn create_database_if_missing(
    admin: &PgConnectOptions,
    name: &str,
) -> Result<(), DatabaseError> {
    let mut conn = admin.connect().await.map_err(DatabaseError::Connect)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(DatabaseError::Connect)?;
    if !exists {
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .map_err(DatabaseError::Connect)?;
    }
    Ok(())
}

/// Applies the embedded migrations as the owner.
pub async fn migrate(owner: &PgConnectOptions) -> Result<(), DatabaseError> {
    let mut conn = owner.connect().await.map_err(DatabaseError::Connect)?;
    MIGRATOR.run(&mut conn).await?;
    Ok(())
}

/// A pool whose connections act as [`WRITER_ROLE`] when the server lets us, so that even a
/// bug in the service cannot UPDATE or DELETE the log (the triggers refuse it as well).
pub async fn writer_pool(
    owner: &PgConnectOptions,
    settings: &PoolSettings,
) -> Result<PgPool, DatabaseError> {
    let mut probe = owner.connect().await.map_err(DatabaseError::Connect)?;
    let can_set_role: bool = sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                     THEN pg_has_role(current_user, $1, 'MEMBER') ELSE false END",
    )
    .bind(WRITER_ROLE)
    .fetch_one(&mut probe)
    .await
    .map_err(DatabaseError::Connect)?;
    drop(probe);
    if !can_set_role {
        tracing::warn!(
            role = WRITER_ROLE,
            "the service writes as the table owner: triggers still refuse UPDATE, DELETE and \
             TRUNCATE on the log, but an owner could disable them; grant role {WRITER_ROLE} \
             to the service's user to close that door"
        );
    }
    let idle_ms = IDLE_IN_TRANSACTION_TIMEOUT.as_millis();
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        // A broken connection surfaces as an error on first use, which the caller handles;
        // a ping before every acquire would cost each command a round trip.
        .test_before_acquire(false)
        .acquire_timeout(settings.acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                let mut sql = format!("SET idle_in_transaction_session_timeout = {idle_ms};");
                if can_set_role {
                    sql.push_str(&format!("SET ROLE {WRITER_ROLE};"));
                }
                conn.execute(sql.as_str()).await?;
                Ok(())
            })
        })
        .connect_with(owner.clone())
        .await
        .map_err(DatabaseError::Connect)
}
