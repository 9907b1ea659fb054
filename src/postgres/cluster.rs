//! A private PostgreSQL cluster started from the server binaries on this machine.
//!
//! Used when no `DATABASE_URL` is given: by `serve` (under `--data-dir`), by the test suite
//! (one cluster shared by all test processes) and by the benchmarks. The cluster listens on a
//! Unix socket only, so it never collides with another server's TCP port.
//!
//! PostgreSQL refuses to run as root. When we are root (containers, CI), every server process
//! is started as a system account of its own, `fundledger-pg` (created with `useradd
//! --system` when missing; `FUNDLEDGER_PG_USER` to choose another), never an account other
//! software shares (`postgres`, `nobody`), and the data directory is handed to it. An existing
//! cluster keeps running as the account that owns it.
//!
//! The socket directory is created exclusively (mode 0700) and, when it exists already, used
//! only if the server's account owns it and nobody else may write to it: a directory someone
//! else made first is refused, not used.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The superuser created by `initdb` in a private cluster.
pub const SUPERUSER: &str = "fundledger";

/// Oldest server major version we rely on (`xid8`, `pg_current_xact_id`, `WITH (FORCE)`).
pub const SERVER_MAJOR_MIN: u32 = 15;

const INSTALL_HINT: &str = "Install the PostgreSQL server binaries (version 15 or newer): \
on Debian or Ubuntu `apt-get install postgresql`, on Fedora `dnf install postgresql-server`, \
on macOS `brew install postgresql@16`. Or set DATABASE_URL to a server you already run.";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH nor under \
         /usr/lib/postgresql/*/bin. {INSTALL_HINT}"
    )]
    BinariesNotFound,
    #[error("PostgreSQL server {found} found at {dir} is too old: version {SERVER_MAJOR_MIN} or newer is needed. {INSTALL_HINT}")]
    ServerTooOld { found: String, dir: PathBuf },
    #[error("running as root, but no unprivileged user to run PostgreSQL as: {0}")]
    NoUnprivilegedUser(String),
    #[error(
        "{path} is owned by uid {owner} or writable by others; a directory the server's \
         account does not own could have been made by another user to watch or replace the \
         server's files: remove it, or choose another --data-dir"
    )]
    NotOurs { path: PathBuf, owner: u32 },
    #[error(
        "the data directory {dir} is not reachable by user `{user}`, who runs the PostgreSQL \
         server (it needs search permission on every parent directory). Choose a data directory \
         such as /var/lib/fundledger with --data-dir"
    )]
    DataDirNotReachable { dir: PathBuf, user: String },
    #[error("{action} failed: {detail}")]
    Command { action: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}

/// The directory holding `initdb`, `pg_ctl`, `postgres`, `pgbench`, ….
#[derive(Debug, Clone)]
pub struct ServerBinaries {
    pub dir: PathBuf,
    pub major: u32,
}

impl ServerBinaries {
    /// Looks on PATH first, then under `/usr/lib/postgresql/*/bin` (newest version first),
    /// which is where Debian and Ubuntu install the server without putting it on PATH.
    pub fn locate() -> Result<Self, ClusterError> {
        let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versioned.into_iter().map(|(_, dir)| dir));

        let dir = candidates
            .into_iter()
            .find(|dir| ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file()))
            .ok_or(ClusterError::BinariesNotFound)?;
        // PATH often holds symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb);
        // the real directory also has the tools PATH may lack, such as pgbench.
        let dir = fs::canonicalize(dir.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(dir);
        let out = run(Command::new(dir.join("postgres")).arg("--version"), "postgres --version")?;
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major = parse_major(&found).unwrap_or(0);
        if major < SERVER_MAJOR_MIN {
            return Err(ClusterError::ServerTooOld { found, dir });
        }
        Ok(Self { dir, major })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// "postgres (PostgreSQL) 15.18 (Debian …)" → 15
fn parse_major(version_line: &str) -> Option<u32> {
    let after = version_line.split(')').nth(1)?.trim();
    after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The account the server processes run as.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

fn current_uid() -> u32 {
    // The owner of /proc/self is the effective user; this avoids `unsafe` libc calls.
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// The account fundledger creates to run its private clusters as, when run as root.
pub const SERVER_ACCOUNT: &str = "fundledger-pg";

fn lookup_account(name: &str) -> Result<Option<RunAs>, ClusterError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(io_err("reading /etc/passwd"))?;
    Ok(passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (uid, gid) = (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        (f[0] == name && uid != 0).then(|| RunAs { name: name.to_string(), uid, gid })
    }))
}

fn account_of_uid(uid: u32) -> Result<Option<RunAs>, ClusterError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(io_err("reading /etc/passwd"))?;
    Ok(passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (u, gid) = (f.get(2)?.parse::<u32>().ok()?, f.get(3)?.parse().ok()?);
        (u == uid && uid != 0).then(|| RunAs { name: f[0].to_string(), uid, gid })
    }))
}

/// When root: the account to run PostgreSQL as; otherwise `None`. An existing cluster keeps
/// the account that owns its PGDATA; a new one gets `FUNDLEDGER_PG_USER` or
/// [`SERVER_ACCOUNT`], created as a system account (no home, no login shell) if missing.
fn unprivileged_account(pgdata: &Path) -> Result<Option<RunAs>, ClusterError> {
    if current_uid() != 0 {
        return Ok(None);
    }
    if pgdata.join("PG_VERSION").is_file() {
        let owner =
            fs::metadata(pgdata).map_err(io_err(format!("reading {}", pgdata.display())))?;
        if let Some(account) = account_of_uid(owner.uid())? {
            return Ok(Some(account));
        }
    }
    let name = match std::env::var("FUNDLEDGER_PG_USER") {
        Ok(u) if !u.is_empty() => {
            return lookup_account(&u)?.map(Some).ok_or_else(|| {
                ClusterError::NoUnprivilegedUser(format!(
                    "FUNDLEDGER_PG_USER names `{u}`, who does not exist in /etc/passwd"
                ))
            })
        }
        _ => SERVER_ACCOUNT,
    };
    // Processes starting at once may race to create it: useradd fails for all but one, and
    // then the account is there.
    for attempt in 0..5 {
        if let Some(account) = lookup_account(name)? {
            return Ok(Some(account));
        }
        let created = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
            .args(["--comment", "fundledger private PostgreSQL clusters", name])
            .stdin(Stdio::null())
            .output();
        match created {
            Ok(out) if out.status.success() => {}
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(100 * (attempt + 1))),
            Err(e) => {
                return Err(ClusterError::NoUnprivilegedUser(format!(
                    "the system account `{name}` does not exist and useradd could not run \
                     ({e}); create it (`useradd --system --user-group {name}`) or set \
                     FUNDLEDGER_PG_USER"
                )))
            }
        }
    }
    lookup_account(name)?.map(Some).ok_or_else(|| {
        ClusterError::NoUnprivilegedUser(format!(
            "useradd could not create the system account `{name}`; create it \
             (`useradd --system --user-group {name}`) or set FUNDLEDGER_PG_USER"
        ))
    })
}

/// Settings appended to `postgresql.conf` of a new cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is flushed to disk before it is acknowledged (the service, benchmarks).
    Durable,
    /// fsync off: for throw-away test clusters only, where speed beats crash safety.
    Disposable,
}

/// A private cluster under `root`: `root/pg` is PGDATA, `root/socket` the socket directory.
#[derive(Debug)]
pub struct Cluster {
    bins: ServerBinaries,
    root: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<RunAs>,
}

/// A Unix socket path must fit in `sun_path` (108 bytes on Linux) with `/.s.PGSQL.5432`.
const SOCKET_DIR_LEN_MAX: usize = 90;

impl Cluster {
    pub fn new(root: &Path) -> Result<Self, ClusterError> {
        let bins = ServerBinaries::locate()?;
        fs::create_dir_all(root).map_err(io_err(format!("creating {}", root.display())))?;
        let root = root.canonicalize().map_err(io_err(format!("resolving {}", root.display())))?;
        let pgdata = root.join("pg");
        let run_as = unprivileged_account(&pgdata)?;
        // The data directory is ours (or root's, or the server account's): not one another
        // user prepared, such as a predictable path under /tmp made first by someone else.
        let meta =
            fs::symlink_metadata(&root).map_err(io_err(format!("reading {}", root.display())))?;
        let trusted = [0, current_uid(), run_as.as_ref().map_or(u32::MAX, |r| r.uid)];
        if !trusted.contains(&meta.uid()) || meta.permissions().mode() & 0o002 != 0 {
            return Err(ClusterError::NotOurs { path: root, owner: meta.uid() });
        }
        if run_as.is_some() {
            // The server's account must pass through our own directory (e.g. one made by
            // `mktemp -d`, mode 0700). Search permission only: the listing stays private.
            let meta =
                fs::metadata(&root).map_err(io_err(format!("reading {}", root.display())))?;
            let mode = meta.permissions().mode();
            if meta.uid() == current_uid() && mode & 0o001 == 0 {
                fs::set_permissions(&root, fs::Permissions::from_mode(mode | 0o011)).map_err(
                    io_err(format!("opening {} to the server's account", root.display())),
                )?;
            }
        }
        let socket_dir = socket_dir_of(&root)?;
        Ok(Self { bins, pgdata, root, socket_dir, run_as })
    }

    pub fn binaries(&self) -> &ServerBinaries {
        &self.bins
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Connection options for database `db` as the cluster's superuser, over the Unix socket.
    pub fn connect_options(&self, db: &str) -> sqlx::postgres::PgConnectOptions {
        sqlx::postgres::PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(SUPERUSER)
            .database(db)
    }

    /// Connection URL for database `db` as the cluster's superuser, over the Unix socket.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@localhost/{db}?host={}", self.socket_dir.display())
    }

    pub fn is_initialized(&self) -> bool {
        self.pgdata.join("PG_VERSION").is_file()
    }

    /// Creates the cluster if it does not exist yet (a second start reuses it). A durable
    /// cluster is initialised with its files flushed to disk; a disposable one skips that.
    pub fn init(&self, durability: Durability) -> Result<(), ClusterError> {
        if self.is_initialized() {
            return Ok(());
        }
        fs::create_dir_all(&self.pgdata)
            .map_err(io_err(format!("creating {}", self.pgdata.display())))?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))
            .map_err(io_err("setting PGDATA permissions"))?;
        self.hand_over(&self.pgdata)?;
        let mut cmd = Command::new(self.bins.path("initdb"));
        cmd.arg("-D").arg(&self.pgdata).args(initdb_args(durability));
        self.run_server_tool(cmd, "initdb")?;
        let mut conf = String::from("\n# fundledger private cluster\nlisten_addresses = ''\n");
        conf.push_str(&format!("unix_socket_directories = '{}'\n", self.socket_dir.display()));
        conf.push_str(
            "unix_socket_permissions = 0700\nmax_connections = 300\nshared_buffers = 256MB\n",
        );
        conf.push_str("logging_collector = off\n");
        if durability == Durability::Disposable {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf_path = self.pgdata.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).map_err(io_err("reading postgresql.conf"))?;
        text.push_str(&conf);
        fs::write(&conf_path, text).map_err(io_err("writing postgresql.conf"))?;
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        let mut cmd = Command::new(self.bins.path("pg_ctl"));
        cmd.arg("status").arg("-D").arg(&self.pgdata);
        self.as_server_user(&mut cmd);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Starts the server and waits until it accepts connections. Returns `false` if it was
    /// already running (then it is not ours to stop).
    pub fn start(&self) -> Result<bool, ClusterError> {
        if self.is_running() {
            return Ok(false);
        }
        self.make_socket_dir()?;
        let log = self.pgdata.join("server.log");
        let mut cmd = Command::new(self.bins.path("pg_ctl"));
        cmd.arg("start").arg("-D").arg(&self.pgdata).arg("-l").arg(&log).args(["-w", "-t", "60"]);
        self.run_server_tool(cmd, "pg_ctl start").map_err(|e| match e {
            ClusterError::Command { action, detail } => ClusterError::Command {
                action,
                detail: format!("{detail}\nserver log ({}):\n{}", log.display(), tail(&log, 20)),
            },
            other => other,
        })?;
        Ok(true)
    }

    /// Fast shutdown: rolls back open transactions and stops.
    pub fn stop(&self) -> Result<(), ClusterError> {
        if !self.is_running() {
            return Ok(());
        }
        let mut cmd = Command::new(self.bins.path("pg_ctl"));
        cmd.arg("stop").arg("-D").arg(&self.pgdata).args(["-m", "fast", "-w", "-t", "60"]);
        self.run_server_tool(cmd, "pg_ctl stop")?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the socket directory exclusively, mode 0700, for the server's account; an
    /// existing one is used only if that account owns it and nobody else can write to it.
    fn make_socket_dir(&self) -> Result<(), ClusterError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = &self.socket_dir;
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => return self.hand_over(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("creating {}", dir.display()))(e)),
        }
        let meta =
            fs::symlink_metadata(dir).map_err(io_err(format!("reading {}", dir.display())))?;
        let owner = self.run_as.as_ref().map_or_else(current_uid, |r| r.uid);
        if !meta.is_dir() || meta.uid() != owner || meta.permissions().mode() & 0o022 != 0 {
            return Err(ClusterError::NotOurs { path: dir.clone(), owner: meta.uid() });
        }
        Ok(())
    }

    /// Gives `dir` to the unprivileged server account and checks that it can reach it.
    fn hand_over(&self, dir: &Path) -> Result<(), ClusterError> {
        let Some(run_as) = &self.run_as else {
            return Ok(());
        };
        let meta = fs::metadata(dir).map_err(io_err(format!("reading {}", dir.display())))?;
        if meta.uid() != run_as.uid {
            let out = run(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{}:{}", run_as.uid, run_as.gid))
                    .arg(dir),
                "chown",
            )?;
            drop(out);
        }
        let mut probe = Command::new("test");
        probe.arg("-x").arg(dir);
        self.as_server_user(&mut probe);
        let reachable = probe.status().map(|s| s.success()).unwrap_or(false);
        if !reachable {
            return Err(ClusterError::DataDirNotReachable {
                dir: dir.to_path_buf(),
                user: run_as.name.clone(),
            });
        }
        Ok(())
    }

    fn as_server_user(&self, cmd: &mut Command) {
        if let Some(run_as) = &self.run_as {
            cmd.uid(run_as.uid).gid(run_as.gid).env("HOME", &self.root).current_dir("/");
        }
    }

    fn run_server_tool(&self, mut cmd: Command, action: &str) -> Result<Output, ClusterError> {
        self.as_server_user(&mut cmd);
        run(&mut cmd, action)
    }
}

/// `initdb`'s options. Trust authentication over a socket only the server's account (and
/// root) may open. A durable cluster's files are flushed to disk before initdb returns.
fn initdb_args(durability: Durability) -> Vec<&'static str> {
    let mut args = vec!["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"];
    if durability == Durability::Disposable {
        args.push("--no-sync");
    }
    args
}

fn run(cmd: &mut Command, action: &str) -> Result<Output, ClusterError> {
    let out = cmd.stdin(Stdio::null()).output().map_err(io_err(format!("starting {action}")))?;
    if !out.status.success() {
        return Err(ClusterError::Command {
            action: action.to_string(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_string(),
        });
    }
    Ok(out)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `<root>/socket`; for a data directory too deep for a socket path, a directory of a random
/// name under the temp directory, recorded in `<root>/socket.path` so every start finds the
/// same one (a predictable name could be made first by another user).
fn socket_dir_of(root: &Path) -> Result<PathBuf, ClusterError> {
    let beside = root.join("socket");
    if beside.as_os_str().len() <= SOCKET_DIR_LEN_MAX {
        return Ok(beside);
    }
    let record = root.join("socket.path");
    match fs::read_to_string(&record) {
        Ok(path) if !path.trim().is_empty() => return Ok(PathBuf::from(path.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("reading {}", record.display()))(e)),
    }
    let dir =
        std::env::temp_dir().join(format!("fundledger-sock-{}", uuid::Uuid::new_v4().simple()));
    fs::write(&record, dir.as_os_str().as_encoded_bytes())
        .map_err(io_err(format!("writing {}", record.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_disposable_cluster_skips_flushing_its_files_at_initdb() {
        assert!(!initdb_args(Durability::Durable).contains(&"--no-sync"));
        assert!(initdb_args(Durability::Disposable).contains(&"--no-sync"));
    }

    #[test]
    fn parses_server_major_version() {
        assert_eq!(parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), Some(15));
        assert_eq!(parse_major("postgres (PostgreSQL) 9.6.1"), Some(9));
        assert_eq!(parse_major("garbage"), None);
    }
}
