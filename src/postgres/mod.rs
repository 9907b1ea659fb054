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

/// The group role holding what the service may do: SELECT on the log, EXECUTE on the append
/// and sequence functions, and the read-model and HTTP tables. It cannot log in.
pub const WRITER_ROLE: &str = "fundledger_writer";

/// The role the service logs in as: owns nothing, a member of [`WRITER_ROLE`]. `RESET ROLE`
/// on its connections leads back to it, never to the owner.
pub const SERVICE_ROLE: &str = "fundledger_service";

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
    #[error("rebuilding the read models after a migration failed: {0}")]
    Rebuild(String),
    #[error(
        "the service's login role cannot be set up ({0}). The owner (DATABASE_URL) must be \
         allowed to create roles (CREATEROLE), or give the service its own login with \
         FUNDLEDGER_SERVICE_URL: a role that owns nothing and is a member of {WRITER_ROLE}"
    )]
    ServiceRole(String),
    #[error(
        "the service would log in as `{0}`, which is a superuser, owns the log or may change \
         it: the service must log in as a role that owns nothing (FUNDLEDGER_SERVICE_URL, or \
         leave it unset to use {SERVICE_ROLE})"
    )]
    ServiceNotLimited(String),
}

/// The service's database: the writer pool and, when we started it, the private cluster.
#[derive(Debug)]
pub struct Database {
    /// Logged in as the service's role (never the owner).
    pub pool: PgPool,
    /// The owner connection options: for migrations and the key checks only.
    pub owner: PgConnectOptions,
    cluster: Option<(Cluster, bool)>,
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Longest a statement of the service may run (`statement_timeout`): below the request
    /// timeout, so a runaway query ends with a clear 503 instead of a dropped connection.
    pub statement_timeout: Duration,
    /// Longest a statement may wait for a lock (`lock_timeout`): a command queued behind a
    /// stuck holder ends in bounded time. Approvals of one quota queue on its lock for a few
    /// milliseconds each, far below this.
    pub lock_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(20),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

impl Database {
    /// Opens `url`, or starts (creating on first use) the private cluster under `data_dir`;
    /// migrates as the owner, and connects the pool as the service's login.
    pub async fn open(
        url: Option<&str>,
        data_dir: &Path,
        settings: &PoolSettings,
    ) -> Result<Self, DatabaseError> {
        Self::open_as(url, None, data_dir, settings).await
    }

    /// [`Database::open`] with a separate login for the service (`FUNDLEDGER_SERVICE_URL`).
    pub async fn open_as(
        url: Option<&str>,
        service_url: Option<&str>,
        data_dir: &Path,
        settings: &PoolSettings,
    ) -> Result<Self, DatabaseError> {
        let login = ServiceLogin::new(url, service_url)?;
        let reached = Reached::start(url, data_dir).await?;
        Self::open_reached(reached, &login, settings).await
    }

    /// Migrates the reached database and connects the service's pool; stops a cluster this
    /// process started if that fails.
    pub async fn open_reached(
        reached: Reached,
        login: &ServiceLogin,
        settings: &PoolSettings,
    ) -> Result<Self, DatabaseError> {
        let ready = async {
            migrate(&reached.owner).await?;
            service_pool(&reached.owner, login, settings).await
        };
        match ready.await {
            Ok(pool) => Ok(Self { pool, owner: reached.owner, cluster: reached.cluster }),
            Err(e) => {
                reached.stop().await;
                Err(e)
            }
        }
    }

    /// Closes the pool and stops the private cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        stop_if_started(self.cluster).await;
    }
}

/// The database reached as its owner, not yet migrated: `DATABASE_URL`, or the private
/// cluster under the data directory (created and started on first use, its database created).
/// `restore` fills such a database before anything migrates it.
#[derive(Debug)]
pub struct Reached {
    pub owner: PgConnectOptions,
    /// The same place as a libpq URL, for `pg_dump` and `pg_restore`.
    pub owner_url: String,
    cluster: Option<(Cluster, bool)>,
}

impl Reached {
    pub async fn start(url: Option<&str>, data_dir: &Path) -> Result<Self, DatabaseError> {
        let Some(url) = url else {
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
            let reached = Self {
                owner: cluster.connect_options(PRIVATE_DATABASE),
                owner_url: cluster.url(PRIVATE_DATABASE),
                cluster: Some((cluster, started)),
            };
            let admin = reached.cluster.as_ref().map(|(c, _)| c.connect_options("postgres"));
            if let Err(e) =
                create_database_if_missing(&admin.expect("a cluster"), PRIVATE_DATABASE).await
            {
                // Nobody else will stop a cluster we started for a database we cannot use.
                reached.stop().await;
                return Err(e);
            }
            return Ok(reached);
        };
        let owner = PgConnectOptions::from_str(url).map_err(DatabaseError::BadUrl)?;
        Ok(Self { owner, owner_url: url.to_string(), cluster: None })
    }

    /// Stops the private cluster if this process started it.
    pub async fn stop(self) {
        stop_if_started(self.cluster).await;
    }
}

/// Stops a private cluster this process started (`true`); one it found running stays up.
async fn stop_if_started(cluster: Option<(Cluster, bool)>) {
    if let Some((cluster, true)) = cluster {
        tracing::info!("stopping the private PostgreSQL cluster");
        if let Err(e) =
            tokio::task::spawn_blocking(move || cluster.stop()).await.expect("stop task")
        {
            tracing::error!(error = %e, "stopping the private PostgreSQL cluster failed");
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
/// The line a migration carries when the read models must be written again from the log
/// after it (it adds a column or a table a fold fills).
pub const REBUILD_MARKER: &str = "-- fundledger: rebuild read models";

pub async fn migrate(owner: &PgConnectOptions) -> Result<(), DatabaseError> {
    let mut conn = owner.connect().await.map_err(DatabaseError::Connect)?;
    let applied = applied_versions(&mut conn).await;
    MIGRATOR.run(&mut conn).await?;
    // A ledger that already holds events and has just gained a read model fills it from the
    // log, through the same definition the commands use (an upgrade needs no manual step).
    let newly_rebuilding = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .any(|m| m.sql.contains(REBUILD_MARKER));
    if newly_rebuilding && !applied.is_empty() {
        let has_events: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
            .fetch_one(&mut conn)
            .await
            .map_err(DatabaseError::Connect)?;
        if has_events {
            tracing::info!("a migration added to the read models: rebuilding them from the log");
            crate::rebuild::rebuild(&mut conn, |_| {})
                .await
                .map_err(|e| DatabaseError::Rebuild(e.to_string()))?;
        }
    }
    Ok(())
}

/// The migrations already applied (none on a new database).
async fn applied_versions(conn: &mut sqlx::PgConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(conn)
        .await
        .unwrap_or_default()
}

/// How the service logs in (issue 12: the append-only guarantee must not depend on the client's
/// good manners, so the service's connections can never act as the owner).
#[derive(Debug, Clone)]
pub enum ServiceLogin {
    /// [`SERVICE_ROLE`], created (or kept in shape) by the owner at every start. Its password
    /// is derived from the owner's (HMAC-SHA256 of a constant under the owner's password), so
    /// every process that holds the owner's URL logs in with the same one and none is stored;
    /// an owner without a password (trust or peer authentication, as in the private cluster,
    /// whose socket only its own account can reach) gives the role none.
    Created { password: Option<String> },
    /// A login the operator made (`FUNDLEDGER_SERVICE_URL`), a member of [`WRITER_ROLE`].
    Url(Box<PgConnectOptions>),
}

impl ServiceLogin {
    /// The login for an owner given by `owner_url` (`None`: the private cluster), or the
    /// separate `service_url`.
    pub fn new(owner_url: Option<&str>, service_url: Option<&str>) -> Result<Self, DatabaseError> {
        if let Some(url) = service_url.filter(|u| !u.is_empty()) {
            let options = PgConnectOptions::from_str(url).map_err(DatabaseError::BadUrl)?;
            return Ok(Self::Url(Box::new(options)));
        }
        let owner_password = owner_url
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.password().map(percent_decode))
            .or_else(|| owner_url.and_then(|_| std::env::var("PGPASSWORD").ok()))
            .filter(|p| !p.is_empty());
        Ok(Self::Created { password: owner_password.map(|p| derive_password(&p)) })
    }
}

/// `%XX` escapes of a URL's password, as the server will receive it.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn derive_password(owner_password: &str) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(owner_password.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(b"fundledger_service login v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Creates [`SERVICE_ROLE`] if missing and makes it a member of [`WRITER_ROLE`], as the owner.
/// Roles belong to the whole server, so many databases (and test processes) share it; a
/// concurrent creator is not an error.
async fn ensure_service_role(
    owner: &PgConnectOptions,
    password: Option<&str>,
) -> Result<(), DatabaseError> {
    let mut conn = owner.connect().await.map_err(DatabaseError::Connect)?;
    let sql = format!(
        "DO $$
         BEGIN
             IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
                 RAISE EXCEPTION 'role {WRITER_ROLE} does not exist' USING ERRCODE = '42704';
             END IF;
             IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
                 BEGIN
                     CREATE ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
                         NOREPLICATION NOBYPASSRLS INHERIT;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                 END;
             END IF;
             IF NOT pg_has_role('{SERVICE_ROLE}', '{WRITER_ROLE}', 'MEMBER') THEN
                 BEGIN
                     GRANT {WRITER_ROLE} TO {SERVICE_ROLE};
                 EXCEPTION WHEN unique_violation THEN NULL;
                 END;
             END IF;
         END
         $$"
    );
    conn.execute(sql.as_str()).await.map_err(|e| DatabaseError::ServiceRole(e.to_string()))?;
    if let Some(password) = password {
        // Hex only: nothing to quote.
        debug_assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));
        conn.execute(format!("ALTER ROLE {SERVICE_ROLE} PASSWORD '{password}'").as_str())
            .await
            .map_err(|e| DatabaseError::ServiceRole(e.to_string()))?;
    }
    Ok(())
}

/// The connection options the service uses, after making sure its role exists.
pub async fn service_options(
    owner: &PgConnectOptions,
    login: &ServiceLogin,
) -> Result<PgConnectOptions, DatabaseError> {
    match login {
        ServiceLogin::Url(options) => Ok(options.as_ref().clone()),
        ServiceLogin::Created { password } => {
            let options = owner.clone().username(SERVICE_ROLE);
            let options = match password {
                Some(p) => options.password(p),
                None => options,
            };
            // Log in first: the password is set only when it does not work yet, so that
            // processes starting together do not rewrite the role at once.
            match options.connect().await {
                Ok(conn) => {
                    drop(conn);
                    // Still make sure of the membership: a fresh server may have the role only.
                    ensure_service_role(owner, None).await?;
                }
                Err(_) => ensure_service_role(owner, password.as_deref()).await?,
            }
            Ok(options)
        }
    }
}

/// The pool of the service: connections logged in as the service's role, which owns nothing
/// and may only read, append through `fundledger_append`, sequence through
/// `fundledger_sequence`, and keep the read models and the HTTP tables. Refuses a login that
/// could do more (a superuser, the owner, or one that may change the log).
pub async fn service_pool(
    owner: &PgConnectOptions,
    login: &ServiceLogin,
    settings: &PoolSettings,
) -> Result<PgPool, DatabaseError> {
    let options = service_options(owner, login).await?;
    let mut probe = options.connect().await.map_err(DatabaseError::Connect)?;
    let (user, superuser, owns, can_change, can_append): (String, bool, bool, bool, bool) =
        sqlx::query_as(
            "SELECT current_user::text, r.rolsuper,
                    pg_has_role(current_user, c.relowner, 'USAGE'),
                    has_table_privilege('events', 'INSERT, UPDATE, DELETE, TRUNCATE')
                      OR has_table_privilege('log', 'INSERT, UPDATE, DELETE, TRUNCATE'),
                    has_function_privilege('fundledger_sequence()', 'EXECUTE')
               FROM pg_roles r, pg_class c
              WHERE r.rolname = current_user AND c.oid = 'events'::regclass",
        )
        .fetch_one(&mut probe)
        .await
        .map_err(DatabaseError::Connect)?;
    drop(probe);
    if superuser || owns || can_change {
        return Err(DatabaseError::ServiceNotLimited(user));
    }
    if !can_append {
        return Err(DatabaseError::ServiceRole(format!(
            "the role `{user}` may not append: run `GRANT {WRITER_ROLE} TO \"{user}\"` as the owner"
        )));
    }
    let idle_ms = IDLE_IN_TRANSACTION_TIMEOUT.as_millis();
    let statement_ms = settings.statement_timeout.as_millis();
    let lock_ms = settings.lock_timeout.as_millis();
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        // A broken connection surfaces as an error on first use, which the caller handles;
        // a ping before every acquire would cost each command a round trip.
        .test_before_acquire(false)
        .acquire_timeout(settings.acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // No JIT compilation: a command's statements are short, and a plan whose
                // estimate passes `jit_above_cost` (a generic plan over an array argument,
                // estimated at many rows) was compiled again on every execution, 4 ms each,
                // where the statement itself takes a quarter of one (BENCHMARKS.md).
                conn.execute(
                    format!(
                        "SET idle_in_transaction_session_timeout = {idle_ms}; \
                         SET statement_timeout = {statement_ms}; SET lock_timeout = {lock_ms}; \
                         SET jit = off"
                    )
                    .as_str(),
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(DatabaseError::Connect)
}

/// [`service_pool`] with the created role and no password: the private cluster's way (the
/// benchmarks use it).
pub async fn writer_pool(
    owner: &PgConnectOptions,
    settings: &PoolSettings,
) -> Result<PgPool, DatabaseError> {
    service_pool(owner, &ServiceLogin::Created { password: None }, settings).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_password_is_derived_from_the_owners_and_never_the_same_text() {
        let login = |url: &str| match ServiceLogin::new(Some(url), None).unwrap() {
            ServiceLogin::Created { password } => password,
            ServiceLogin::Url(_) => panic!("no service URL was given"),
        };
        let derived = login("postgres://owner:p%40ss@db.example/ledger").unwrap();
        assert_eq!(derived, derive_password("p@ss"), "the URL's escapes are decoded");
        assert_eq!(derived.len(), 64);
        assert!(!derived.contains("p@ss"));
        assert_ne!(derived, derive_password("other"));
        assert!(matches!(
            ServiceLogin::new(Some("postgres://a@h/d"), Some("postgres://svc:x@h/d")).unwrap(),
            ServiceLogin::Url(_)
        ));
        assert!(matches!(
            ServiceLogin::new(None, None).unwrap(),
            ServiceLogin::Created { password: None }
        ));
    }
}
