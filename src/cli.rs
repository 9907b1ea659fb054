//! The command line: `fundledger serve`, and the administrative commands to come.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::http::{AppState, Limits};
use crate::personal::Keys;
use crate::postgres::{Database, PoolSettings};
use crate::publishing::{load_policy_file, publish, PublishError};
use crate::tokens;

#[derive(Debug, Parser)]
#[command(
    name = "fundledger",
    version,
    about = "Event-sourced ledger of unemployment-insurance fund payouts"
)]
pub struct Cli {
    /// PostgreSQL to use. Without it, a private cluster is started under --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// The service's own login, when it is not the role the owner creates
    /// (`fundledger_service`): a role that owns nothing and is a member of fundledger_writer.
    /// DATABASE_URL then only migrates and checks the keys.
    #[arg(long, env = "FUNDLEDGER_SERVICE_URL", global = true, hide_env_values = true)]
    pub service_url: Option<String>,
    /// Directory of the private PostgreSQL cluster (and, by default, of the key files).
    #[arg(long, env = "FUNDLEDGER_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Directory of the key files (personal.key, checkpoint.key): by default `keys` under
    /// --data-dir with the private cluster; required with DATABASE_URL.
    #[arg(long, env = "FUNDLEDGER_KEY_DIR", global = true)]
    pub key_dir: Option<PathBuf>,
    /// Log at info level: a one-shot command then tells when it starts and stops the private
    /// cluster (`serve` always logs at info). RUST_LOG, when set, decides instead.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log filter when RUST_LOG is not set. A one-shot command's output is its answer
    /// (a token on the last line, a report): starting and stopping the private cluster is
    /// noise there unless asked for, while a server's operator wants to see it.
    pub fn default_log_filter(&self) -> &'static str {
        if self.verbose || matches!(self.command, Command::Serve { .. }) {
            "info,sqlx=warn"
        } else {
            "warn"
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and serve the HTTP API until Ctrl-C, SIGTERM or SIGHUP, or until the
    /// process that started it ends (unless started under `nohup`); then stop the private
    /// cluster if this process started it.
    Serve {
        #[arg(long, env = "FUNDLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Connections in the database pool.
        #[arg(long, env = "FUNDLEDGER_DB_CONNECTIONS", default_value_t = 16)]
        db_connections: u32,
        /// Seconds a request may take before it is abandoned (and its transaction rolled back).
        #[arg(long, env = "FUNDLEDGER_REQUEST_TIMEOUT", default_value_t = 30)]
        request_timeout: u64,
        /// Minutes between signed checkpoints of the chain (0: none; use 0 where checkpoints
        /// are signed on another host with `fundledger checkpoint`).
        #[arg(long, env = "FUNDLEDGER_CHECKPOINT_EVERY", default_value_t = 60)]
        checkpoint_every: u64,
        /// The checkpoint public key (hex, as `fundledger checkpoint` prints it) that
        /// GET /v1/audit/verify trusts. Without it, verification checks the chain only and
        /// says `signatures_checked: false`.
        #[arg(long, env = "FUNDLEDGER_CHECKPOINT_PUBLIC_KEY")]
        checkpoint_public_key: Option<String>,
        /// Largest request body accepted, in bytes.
        #[arg(long, env = "FUNDLEDGER_BODY_LIMIT", default_value_t = 1 << 20)]
        body_limit: usize,
        /// Do not publish the policies shipped with the binary on first start of an empty log.
        #[arg(long)]
        no_default_policies: bool,
        /// Requests a second one token may send on average (0: no limit); over it, 429.
        #[arg(long, env = "FUNDLEDGER_TOKEN_RATE", default_value_t = 50)]
        token_rate: u32,
        /// Requests one token may send at once before the rate applies.
        #[arg(long, env = "FUNDLEDGER_TOKEN_BURST", default_value_t = 100)]
        token_burst: u32,
        /// Seconds a client may take to send a request's headers before the connection is
        /// closed (slow clients cannot hold connections open).
        #[arg(long, env = "FUNDLEDGER_HEADER_READ_TIMEOUT", default_value_t = 10)]
        header_read_timeout: u64,
    },
    /// Walk the audit hash chain and report the first position where it breaks (exit code 1).
    /// Signed checkpoints are checked against --public-key; without it, the chain only.
    Verify {
        /// The checkpoint public key the auditor trusts (hex), as `checkpoint` prints it.
        #[arg(long, env = "FUNDLEDGER_CHECKPOINT_PUBLIC_KEY")]
        public_key: Option<String>,
        /// Verify an export (`fundledger export > log.jsonl`) instead, with no database.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Rebuild every projection from the log alone, as of a moment, and print the quotas and
    /// spending it gives.
    Replay {
        /// Up to and including this log position.
        #[arg(long, conflicts_with = "as_of_time")]
        as_of_position: Option<i64>,
        /// As the ledger stood at this time (RFC 3339, e.g. 2024-12-31T16:00:00Z).
        #[arg(long)]
        as_of_time: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Write the log with its hashes (and checkpoints) as JSON Lines to stdout.
    Export {
        /// The first position to write.
        #[arg(long, default_value_t = 1)]
        from: i64,
    },
    /// Sign the chain's current head with the checkpoint key (kept outside the database) and
    /// record it; prints the public key auditors verify with.
    Checkpoint,
    /// Empty every read model and write it again from the log, through the same definition
    /// the commands use live (safe while `serve` runs: the tables are locked meanwhile).
    Rebuild,
    /// Record a synthetic province (pools, counties, thousands of applications across
    /// 2024–2025 with refusals, objections, failed and reissued payouts and recoveries) through
    /// the real commands into an empty ledger, and print a token to sign in to the dashboard.
    Demo {
        /// How many applications to submit.
        #[arg(long, default_value_t = 5000)]
        applications: usize,
    },
    /// API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Publish policies and list what is published.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The personal-data keys: check them against the database, or rotate the sealing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Idempotency keys: prune those past the retention period.
    #[command(subcommand)]
    Idempotency(IdempotencyCommand),
    /// The private PostgreSQL cluster under --data-dir.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The bank's result files.
    #[command(subcommand)]
    Settlements(SettlementsCommand),
    /// Persons' personal data: erasure (README "Erasure").
    #[command(subcommand)]
    Persons(PersonsCommand),
    /// Back the database up into DIR (new or empty): a `pg_dump` archive taken from one
    /// snapshot (safe while `serve` runs) and a manifest with the chain's head hash and the
    /// signed checkpoints. The keys are not in it: back them up apart with `keys backup`.
    Backup { dir: PathBuf },
    /// Restore a backup into an empty database (a new --data-dir, or DATABASE_URL naming an
    /// empty database), migrate it, check the key files, and verify the chain to the backup's
    /// head hash and checkpoints.
    Restore {
        dir: PathBuf,
        /// The key backup (`keys backup`) to put in place first; without it the key files
        /// must already be where --key-dir says.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// The checkpoint public key the auditor trusts (hex); without it, the key the backup's
        /// newest checkpoint names.
        #[arg(long, env = "FUNDLEDGER_CHECKPOINT_PUBLIC_KEY")]
        public_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonsCommand {
    /// Erase a person's personal data: destroy the data key their ID number, name,
    /// certificate numbers and bank accounts are sealed under, and record `PersonErased`
    /// (the person key and the day). Every hash, checkpoint and amount stays valid; the
    /// person key stays, so annual limits and once-only rules still hold. Refused while one of
    /// their applications is open, and for a person already erased.
    Erase {
        /// The person's resident ID number (read from the command line: prefer --person-key
        /// where shell history is kept).
        #[arg(long, conflicts_with = "person_key", required_unless_present = "person_key")]
        id_number: Option<String>,
        /// The person key (64 hex characters), as the auditors' feed shows it.
        #[arg(long)]
        person_key: Option<String>,
        /// Who erases, as recorded in the event's metadata.
        #[arg(long, default_value = "admin")]
        actor: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettlementsCommand {
    /// Import the bank's result file (CSV, UTF-8 or GBK; README "Finance desk"): records each
    /// settled or failed payout once, each line on its own, and prints the reconciliation as
    /// JSON. Importing the same file again records nothing.
    Import {
        file: PathBuf,
        /// Report payouts issued this many days ago or more with no result as `unanswered`.
        #[arg(long, default_value_t = crate::commands::settlements::UNANSWERED_AFTER_DAYS_DEFAULT)]
        days: u32,
        /// Only payouts of this pool (a finance bureau's own); default: every pool.
        #[arg(long)]
        pool: Option<String>,
        /// Who imports (recorded as the actor).
        #[arg(long, default_value = "finance")]
        actor: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Check the key files against the check values the database recorded, and say where
    /// they are (run it after restoring a backup).
    Check,
    /// Add a new sealing key: values are sealed under it from the next start of `serve` on;
    /// the old keys stay in the file and keep opening what they sealed. Back the file up
    /// again afterwards.
    Rotate,
    /// Copy the key files, checked against the database, into DIR (new or empty, mode 0700):
    /// keep it apart from the data backups.
    Backup { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum IdempotencyCommand {
    /// Forget Idempotency-Keys older than --older-than-days (at least 30): a key seen again
    /// afterwards is a new request. Runs the database function `fundledger_prune_idempotency`,
    /// which the owner and the `fundledger_maintenance` role may execute and the service's own
    /// role may not; run it from cron as one of those.
    Prune {
        #[arg(long, default_value_t = crate::http::unit::IDEMPOTENCY_RETENTION_DAYS)]
        older_than_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Stop the private cluster under --data-dir, as the account it runs as: for one left
    /// running, such as the one the tests share (`cargo test` keeps it up for the next run).
    Stop,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for one person; the token is printed alone on the last line of stdout.
    Create {
        /// Roles, comma-separated: admin, city_finance, county_clerk, county_reviewer, auditor.
        #[arg(long)]
        role: String,
        /// The pool a city_finance token acts for.
        #[arg(long)]
        pool: Option<String>,
        /// The county a county_clerk or county_reviewer token acts for.
        #[arg(long)]
        county: Option<String>,
        /// Whom the token is for; recorded as the actor of every write.
        #[arg(long)]
        label: String,
        /// The person the token stands for: an identifier unique to one person (a staff
        /// number). Several tokens may stand for one person; maker-checker compares persons,
        /// and every event records it with the token id. Default: the label, so tokens with
        /// the same label are one person (maker-checker then errs on the side of refusing).
        #[arg(long)]
        person: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id (from `token list`) or the token itself.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files and record each as a PolicyPublished event. A file with an error
    /// is refused with its line and field, and nothing of it is recorded.
    Publish {
        /// Policy files (TOML), e.g. policies/*.toml. Catalogs are read from catalogs/ beside them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Who publishes (recorded as the actor).
        #[arg(long, default_value = "administrator")]
        actor: String,
    },
    /// Check policy files without recording anything.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Where the database and the keys are: what every command needs besides its own arguments.
#[derive(Debug, Clone)]
struct Site {
    database_url: Option<String>,
    service_url: Option<String>,
    data_dir: PathBuf,
    key_dir: Option<PathBuf>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let site = Site {
        database_url: cli.database_url,
        service_url: cli.service_url,
        data_dir: cli.data_dir,
        key_dir: cli.key_dir,
    };
    match cli.command {
        Command::Serve {
            listen,
            db_connections,
            request_timeout,
            body_limit,
            checkpoint_every,
            ref checkpoint_public_key,
            no_default_policies,
            token_rate,
            token_burst,
            header_read_timeout,
        } => {
            // Before anything slow: a signal that arrives while the cluster starts is kept,
            // and stops the service as soon as it is up, cluster included.
            let mut stop = StopSignals::register()?;
            let trusted = checkpoint_public_key
                .as_deref()
                .map(|k| {
                    crate::checkpoints::public_key(k).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--checkpoint-public-key (FUNDLEDGER_CHECKPOINT_PUBLIC_KEY): not a \
                             hex Ed25519 public key"
                        )
                    })
                })
                .transpose()?;
            let paths = KeyPaths::of(&site)?;
            let settings =
                PoolSettings { max_connections: db_connections, ..PoolSettings::default() };
            let db = open_database(&site, &settings).await?;
            let keys = crate::key_checks::personal(&db.owner, &paths.personal).await;
            let signing = match (&keys, checkpoint_every) {
                (Ok(_), 1..) => {
                    Some(crate::key_checks::checkpoint(&db.owner, &paths.checkpoint).await)
                }
                _ => None,
            };
            let (keys, signing) = match (keys, signing.transpose()) {
                (Ok(k), Ok(s)) => (k, s),
                (Err(e), _) => return close_with(db, e.into()).await,
                (_, Err(e)) => return close_with(db, e.into()).await,
            };
            match &trusted {
                Some(k) => tracing::info!(
                    public_key = %hex::encode(k.to_bytes()),
                    "GET /v1/audit/verify checks checkpoint signatures against this public key"
                ),
                None => tracing::warn!(
                    "no --checkpoint-public-key: GET /v1/audit/verify checks the chain only \
                     (signatures_checked: false)"
                ),
            }
            if let Some(signing) = &signing {
                tracing::info!(
                    public_key = %hex::encode(signing.verifying_key().to_bytes()),
                    "checkpoints are signed with this key; auditors verify with this public key"
                );
            }
            if !no_default_policies {
                let published =
                    match crate::publishing::publish_shipped_on_empty_log(&db.pool).await {
                        Ok(p) => p,
                        Err(e) => return close_with(db, e.into()).await,
                    };
                if !published.is_empty() {
                    tracing::info!(
                        policies = %published.join(", "),
                        "empty log: published the policies shipped with the binary"
                    );
                }
            }
            let limits = Limits {
                body_bytes: body_limit,
                request_timeout: std::time::Duration::from_secs(request_timeout.max(1)),
                token_requests_per_s: token_rate,
                token_request_burst: token_burst,
                header_read_timeout: std::time::Duration::from_secs(header_read_timeout.max(1)),
                ..Limits::default()
            };
            let grace = limits.request_timeout;
            let mut state = AppState::new(db.pool.clone(), keys, limits);
            state.checkpoint_public_key = trusted;
            let signing = signing.map(std::sync::Arc::new);
            state.seal_signer = signing.clone();
            let checkpointing = signing.map(|signing| {
                tokio::spawn(run_checkpoints(
                    db.pool.clone(),
                    signing,
                    std::time::Duration::from_secs(checkpoint_every * 60),
                ))
            });
            let served = serve(listen, state, &mut stop, grace).await;
            if let Some(task) = checkpointing {
                task.abort();
            }
            db.close().await;
            served
        }
        Command::Rebuild => {
            use sqlx::ConnectOptions;
            let db = one_connection(&site).await?;
            let started = std::time::Instant::now();
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:8} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            let rebuilt = async {
                // As the owner: the service's role may not empty the tables.
                let mut owner = db.owner.connect().await?;
                crate::rebuild::rebuild(&mut owner, |p| match p {
                    crate::rebuild::Progress::Folding { done, total } => {
                        bar.set_message("folding");
                        bar.set_length(total);
                        bar.set_position(done);
                    }
                    crate::rebuild::Progress::Writing { done, total } => {
                        bar.set_message("writing");
                        bar.set_length(total);
                        bar.set_position(done);
                    }
                })
                .await
                .map_err(anyhow::Error::from)
            }
            .await;
            bar.finish_and_clear();
            db.close().await;
            let r = rebuilt?;
            println!(
                "rebuilt every read model from {} events: {} rows in {:.1} s",
                r.events,
                r.rows,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Demo { applications } => {
            let db = open_database(&site, &PoolSettings::default()).await?;
            let outcome = demo(&site, &db, applications).await;
            db.close().await;
            outcome
        }
        Command::Checkpoint => {
            // The signer needs the checkpoint key only: the host it runs on holds no
            // personal-data key.
            let path = KeyPaths::of(&site)?.checkpoint;
            let db = one_connection(&site).await?;
            let key = match crate::key_checks::checkpoint(&db.owner, &path).await {
                Ok(key) => key,
                Err(e) => return close_with(db, e.into()).await,
            };
            let recorded = crate::checkpoints::record(&db.pool, &key, "checkpoint").await;
            db.close().await;
            let c = recorded?;
            println!("signed position {} (hash {}) at {}", c.position, c.hash, c.signed_at);
            println!("public key: {}", c.public_key);
            Ok(())
        }
        Command::Replay { as_of_position, as_of_time } => {
            use crate::replay::AsOf;
            let as_of = match (as_of_position, as_of_time) {
                (Some(n), _) => AsOf::Position(n),
                (None, Some(t)) => AsOf::Time(t),
                (None, None) => AsOf::Head,
            };
            let db = one_connection(&site).await?;
            if let Err(e) = checked_keys(&site, &db).await {
                return close_with(db, e).await;
            }
            let started = std::time::Instant::now();
            let mut conn = db.pool.acquire().await?;
            crate::store::sequence(&mut conn).await?;
            let head = crate::store::head(&mut conn).await?.0;
            let bar = log_progress("重放 replaying", head.max(0) as u64);
            let replayed =
                crate::replay::replay(&mut conn, as_of, |at| bar.set_position(at as u64)).await;
            bar.finish_and_clear();
            drop(conn);
            db.close().await;
            let r = replayed?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            eprintln!(
                "replayed {} events in {secs:.1} s ({:.0} events/s)",
                r.position,
                r.position as f64 / secs
            );
            println!("as of position {} ({as_of:?})", r.position);
            println!("quotas:");
            for (code, pool) in &r.models.pools.pools {
                for year in pool.quotas.keys() {
                    let q = r.models.pools.quota(code, *year).expect("a quota that is set");
                    println!(
                        "  {code} {year}: cap {:.2}, committed {:.2}, paid {:.2}, recovered {:.2}, remaining {:.2}",
                        q.cap, q.committed, q.paid, q.recovered, q.remaining()
                    );
                }
            }
            println!("spending (pool, month, county, program, funding: payouts, paid, failed, recovered, net):");
            for (k, f) in r.models.spending.rows() {
                println!(
                    "  {} {} {} {} {}: {}, {:.2}, {:.2}, {:.2}, {:.2}",
                    k.pool,
                    k.month,
                    k.county,
                    k.program,
                    k.funding,
                    f.payouts,
                    f.paid,
                    f.failed,
                    f.recovered,
                    f.net()
                );
            }
            Ok(())
        }
        Command::Export { from } => {
            use std::io::Write;
            let db = one_connection(&site).await?;
            let started = std::time::Instant::now();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut conn = db.pool.acquire().await?;
            crate::store::sequence(&mut conn).await?;
            let head = crate::store::head(&mut conn).await?.0;
            let bar = log_progress("导出 exporting", (head - from.max(1) + 1).max(0) as u64);
            let written = crate::audit::export(&mut conn, from, |line| {
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
                bar.inc(1);
                Ok(())
            })
            .await;
            bar.finish_and_clear();
            out.flush()?;
            drop(conn);
            db.close().await;
            let written = written?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            eprintln!(
                "exported {written} events in {secs:.1} s ({:.0} events/s)",
                written as f64 / secs
            );
            Ok(())
        }
        Command::Verify { public_key, file: Some(file) } => {
            let trusted = match public_key {
                Some(k) => Some(crate::checkpoints::public_key(&k).ok_or_else(|| {
                    anyhow::anyhow!("--public-key: not a hex Ed25519 public key")
                })?),
                None => {
                    eprintln!("no --public-key: checkpoints in the file are not checked");
                    None
                }
            };
            use std::io::BufRead;
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
            );
            let started = std::time::Instant::now();
            let v = crate::audit::verify_export(reader.lines(), trusted.as_ref())?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            eprintln!(
                "{} events in {secs:.1} s ({:.0} events/s)",
                v.events_checked,
                v.events_checked as f64 / secs
            );
            println!("{}", serde_json::to_string_pretty(&v)?);
            if !v.ok {
                anyhow::bail!(
                    "the chain breaks at position {}",
                    v.first_bad.map_or(0, |b| b.position)
                );
            }
            Ok(())
        }
        Command::Verify { public_key, file: None } => {
            let trusted = match public_key {
                Some(k) => Some(crate::checkpoints::public_key(&k).ok_or_else(|| {
                    anyhow::anyhow!("--public-key: not a hex Ed25519 public key")
                })?),
                // Never the public half of a signing key found here: whoever could rewrite
                // the log could have re-signed with it.
                None => {
                    eprintln!("no --public-key: checkpoint signatures are not checked");
                    None
                }
            };
            let db = one_connection(&site).await?;
            let started = std::time::Instant::now();
            let mut conn = db.pool.acquire().await?;
            let head = crate::store::head(&mut conn).await?.0;
            let bar = log_progress("校验 verifying", head.max(0) as u64);
            let result = crate::audit::verify(&mut conn, trusted.as_ref(), |at| {
                bar.set_position(at as u64);
            })
            .await;
            bar.finish_and_clear();
            drop(conn);
            db.close().await;
            let v = result?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            eprintln!(
                "{} events in {:.1} s ({:.0} events/s)",
                v.events_checked,
                secs,
                v.events_checked as f64 / secs
            );
            println!("{}", serde_json::to_string_pretty(&v)?);
            if !v.ok {
                anyhow::bail!(
                    "the chain breaks at position {}",
                    v.first_bad.map_or(0, |b| b.position)
                );
            }
            Ok(())
        }
        Command::Idempotency(IdempotencyCommand::Prune { older_than_days }) => {
            use sqlx::Connection;
            let db = one_connection(&site).await?;
            // As the owner (the URL's user), not the service's role, which may not prune.
            let pruned: Result<i64, sqlx::Error> = async {
                let mut owner = sqlx::PgConnection::connect_with(&db.owner).await?;
                let n = sqlx::query_scalar(
                    "SELECT fundledger_prune_idempotency(make_interval(days => $1))",
                )
                .bind(i32::try_from(older_than_days).unwrap_or(i32::MAX))
                .fetch_one(&mut owner)
                .await?;
                owner.close().await?;
                Ok(n)
            }
            .await;
            db.close().await;
            let pruned = pruned.map_err(|e| {
                anyhow::anyhow!(
                    "pruning idempotency keys: {e} (keys are kept at least 30 days; run this as the database owner or a member of fundledger_maintenance)"
                )
            })?;
            println!("forgot {pruned} idempotency keys older than {older_than_days} days");
            Ok(())
        }
        Command::Cluster(ClusterCommand::Stop) => {
            let dir = &site.data_dir;
            if !dir.join("pg").join("PG_VERSION").is_file() {
                anyhow::bail!("there is no private cluster under {}", dir.display());
            }
            let cluster = crate::postgres::Cluster::new(dir)?;
            if !cluster.is_running() {
                println!("the cluster under {} is not running", dir.display());
                return Ok(());
            }
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
            println!("stopped the cluster under {}", dir.display());
            Ok(())
        }
        Command::Token(command) => {
            let db = one_connection(&site).await?;
            if let Err(e) = checked_keys(&site, &db).await {
                return close_with(db, e).await;
            }
            let outcome = token_command(&db.pool, command).await;
            db.close().await;
            outcome
        }
        Command::Policy(PolicyCommand::Check { files }) => {
            for file in &files {
                let policy = load_policy_file(file)?;
                println!(
                    "{}: ok ({}, {}, in force from {})",
                    file.display(),
                    policy.id,
                    policy.document,
                    policy.effective_from
                );
            }
            Ok(())
        }
        Command::Settlements(SettlementsCommand::Import { file, days, pool, actor }) => {
            let bytes =
                std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let db = open_database(&site, &PoolSettings::default()).await?;
            let mut commands = crate::commands::Db::from(&db.pool);
            let today = crate::http::today();
            let outcome = crate::commands::settlements::import(
                &mut commands,
                &bytes,
                pool.as_deref(),
                days,
                &actor,
                today,
            )
            .await;
            drop(commands);
            match outcome {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    db.close().await;
                    Ok(())
                }
                Err(e) => close_with(db, anyhow::anyhow!("{}: {e}", file.display())).await,
            }
        }
        Command::Policy(PolicyCommand::Publish { files, actor }) => {
            // Validate every file before recording any, so a bad file leaves nothing half done.
            let policies =
                files.iter().map(|f| load_policy_file(f)).collect::<Result<Vec<_>, _>>()?;
            if let Some((a, b)) = policy::select::overlaps(&policies).into_iter().next() {
                anyhow::bail!(
                    "policies `{a}` and `{b}` overlap: same program, same region, periods that \
                     share days; nothing was published"
                );
            }
            let db = open_database(&site, &PoolSettings::default()).await?;
            if let Err(e) = checked_keys(&site, &db).await {
                return close_with(db, e).await;
            }
            let mut outcome = Ok(());
            for (file, policy) in files.iter().zip(&policies) {
                match publish(&db.pool, policy, &actor).await {
                    Ok(event) => println!(
                        "{}: published {} ({}) as event {event}",
                        file.display(),
                        policy.id,
                        policy.document
                    ),
                    Err(PublishError::AlreadyPublished(id)) => {
                        println!("{}: {id} is already published; skipped", file.display())
                    }
                    Err(e) => {
                        outcome = Err(e.into());
                        break;
                    }
                }
            }
            db.close().await;
            outcome
        }
        Command::Persons(PersonsCommand::Erase { id_number, person_key, actor }) => {
            let db = open_database(&site, &PoolSettings::default()).await?;
            let keys = match checked_keys(&site, &db).await {
                Ok(keys) => keys,
                Err(e) => return close_with(db, e).await,
            };
            let person = match (id_number, person_key) {
                (Some(id), _) => match policy::IdNumber::parse(&id) {
                    Ok(id) => crate::personal::PersonKey::derive(&keys, &id),
                    Err(e) => return close_with(db, anyhow::anyhow!("--id-number: {e}")).await,
                },
                (None, Some(key)) => match crate::personal::PersonKey::parse(&key) {
                    Some(key) => key,
                    None => {
                        let e = anyhow::anyhow!(
                            "--person-key: a person key is 64 lowercase hexadecimal characters"
                        );
                        return close_with(db, e).await;
                    }
                },
                (None, None) => unreachable!("clap requires one of the two"),
            };
            let outcome =
                crate::commands::persons::erase(&db.pool, &person, &actor, crate::http::today())
                    .await;
            match outcome {
                Ok(erased) => {
                    println!("{}", serde_json::to_string_pretty(&erased)?);
                    db.close().await;
                    Ok(())
                }
                Err(e) => close_with(db, anyhow::anyhow!("{} ({})", e, e.code())).await,
            }
        }
        Command::Backup { dir } => backup(&site, &dir).await,
        Command::Restore { dir, keys, public_key } => {
            restore(&site, &dir, keys.as_deref(), public_key.as_deref()).await
        }
        Command::Keys(KeysCommand::Backup { dir }) => {
            let paths = KeyPaths::of(&site)?;
            let db = one_connection(&site).await?;
            let checked = async {
                crate::key_checks::personal(&db.owner, &paths.personal).await?;
                if paths.checkpoint.is_file() {
                    crate::key_checks::checkpoint(&db.owner, &paths.checkpoint).await?;
                }
                Ok::<_, crate::key_checks::KeyCheckError>(())
            }
            .await;
            db.close().await;
            checked?;
            if dir.join(crate::backup::MANIFEST).exists() {
                anyhow::bail!(
                    "{} holds a data backup: keep the keys apart from the data",
                    dir.display()
                );
            }
            let copied = crate::backup::backup_keys(&[paths.personal, paths.checkpoint], &dir)?;
            for file in &copied {
                println!("{}", file.display());
            }
            println!(
                "copied {} key files, checked against the database; keep them apart from the \
                 data backups (another medium, another place)",
                copied.len()
            );
            Ok(())
        }
        Command::Keys(command) => {
            let path = KeyPaths::of(&site)?.personal;
            let db = one_connection(&site).await?;
            let outcome = match command {
                KeysCommand::Check => crate::key_checks::personal(&db.owner, &path).await,
                KeysCommand::Rotate => crate::key_checks::rotate(&db.owner, &path).await,
                KeysCommand::Backup { .. } => unreachable!("handled above"),
            };
            db.close().await;
            let keys = outcome?;
            println!(
                "{}: this ledger's personal-data keys; values are sealed under key id {}",
                std::path::absolute(&path)?.display(),
                keys.current_seal_id()
            );
            if matches!(command, KeysCommand::Rotate) {
                println!(
                    "restart `serve` to seal under the new key, and back the file up again \
                     (apart from the database)"
                );
            }
            Ok(())
        }
    }
}

/// `fundledger backup DIR`, with a progress bar of the archive's size.
async fn backup(site: &Site, dir: &std::path::Path) -> anyhow::Result<()> {
    let key_dir = key_dir(site).ok();
    let db = one_connection(site).await?;
    let url = match &site.database_url {
        Some(url) => url.clone(),
        None => {
            crate::postgres::Cluster::new(&site.data_dir)?.url(crate::postgres::PRIVATE_DATABASE)
        }
    };
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} 备份 backing up: {bytes} ({bytes_per_sec}) {elapsed}",
        )
        .expect("a valid template"),
    );
    let taken =
        crate::backup::backup(&db.owner, &url, dir, key_dir.as_deref(), |b| bar.set_position(b))
            .await;
    bar.finish_and_clear();
    db.close().await;
    let m = taken?;
    println!("{}", serde_json::to_string_pretty(&m)?);
    eprintln!(
        "backed up {} events (chain head {} at position {}, {} signed checkpoints) into {}; \
         the keys are not in it: `fundledger keys backup DIR` copies them, to keep apart",
        m.events,
        m.head_hash.as_deref().unwrap_or("-"),
        m.head_position,
        m.checkpoints,
        dir.display()
    );
    Ok(())
}

/// `fundledger restore DIR`: the archive into an empty database, then the same opening every
/// command does (migrations, the service's role, the key checks), then the chain verified
/// against the manifest.
async fn restore(
    site: &Site,
    dir: &std::path::Path,
    keys: Option<&std::path::Path>,
    public_key: Option<&str>,
) -> anyhow::Result<()> {
    let manifest = crate::backup::read_backup(dir)?;
    let trusted =
        match public_key.or(manifest.last_checkpoint.as_ref().map(|c| c.public_key.as_str())) {
            Some(k) => Some(
                crate::checkpoints::public_key(k)
                    .ok_or_else(|| anyhow::anyhow!("--public-key: not a hex Ed25519 public key"))?,
            ),
            None => None,
        };
    let paths = KeyPaths::of(site)?;
    match keys {
        Some(from) => {
            crate::backup::restore_keys(from, &[paths.personal.clone(), paths.checkpoint.clone()])?
        }
        None if !paths.personal.is_file() => anyhow::bail!(
            "{} is missing: the keys are not in a data backup; give --keys DIR (where `fundledger \
             keys backup` put them) or put the files where --key-dir says",
            paths.personal.display()
        ),
        None => {}
    }
    let reached =
        crate::postgres::Reached::start(site.database_url.as_deref(), &site.data_dir).await?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} 恢复 restoring: {msg} {elapsed}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let loaded = crate::backup::load(&reached.owner, &reached.owner_url, dir, &manifest, |step| {
        bar.set_message(step.to_string())
    })
    .await;
    bar.finish_and_clear();
    if let Err(e) = loaded {
        reached.stop().await;
        return Err(e.into());
    }
    let login = crate::postgres::ServiceLogin::new(
        site.database_url.as_deref(),
        site.service_url.as_deref(),
    )?;
    let settings = PoolSettings { max_connections: 1, ..PoolSettings::default() };
    let db = Database::open_reached(reached, &login, &settings).await?;
    let checked = async {
        crate::key_checks::personal(&db.owner, &paths.personal).await?;
        if manifest.checkpoints > 0 {
            crate::key_checks::checkpoint(&db.owner, &paths.checkpoint).await?;
        }
        let mut conn = db.pool.acquire().await?;
        Ok::<_, anyhow::Error>(
            crate::backup::check_restored(&mut conn, &manifest, trusted.as_ref()).await?,
        )
    }
    .await;
    db.close().await;
    let r = checked.map_err(|e| {
        anyhow::anyhow!("{e}\n(the archive is loaded; mend the cause and run `fundledger verify` and `fundledger keys check`)")
    })?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    eprintln!(
        "restored {} events; the chain verifies to position {} with the backup's head hash {}; \
         {} signed checkpoints verified{}",
        r.events,
        r.head_position,
        r.head_hash.as_deref().unwrap_or("-"),
        r.checkpoints_verified,
        match (&r.public_key, public_key) {
            (Some(k), None) => format!(" against the key the backup names ({k}); give --public-key to use the one you trust"),
            (Some(k), Some(_)) => format!(" against {k}"),
            (None, _) => String::new(),
        }
    );
    Ok(())
}

/// The database for a one-shot administrative command: one connection is all it uses.
/// A progress bar on stderr for a walk over `len` positions of the log, labelled in Chinese
/// and English (hidden when stderr is not a terminal).
fn log_progress(label: &str, len: u64) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{label} [{{bar:40}}] {{human_pos}}/{{human_len}} (剩余 {{eta}})"
        ))
        .expect("a valid template")
        .progress_chars("=> "),
    )
}

async fn one_connection(site: &Site) -> anyhow::Result<Database> {
    open_database(site, &PoolSettings { max_connections: 1, ..PoolSettings::default() }).await
}

/// Migrates as the owner, and connects the pool as the service's login.
async fn open_database(site: &Site, settings: &PoolSettings) -> anyhow::Result<Database> {
    Ok(Database::open_as(
        site.database_url.as_deref(),
        site.service_url.as_deref(),
        &site.data_dir,
        settings,
    )
    .await?)
}

/// Closes the database (stopping a private cluster this process started) and fails with `e`.
async fn close_with(db: Database, e: anyhow::Error) -> anyhow::Result<()> {
    db.close().await;
    Err(e)
}

/// The directory of the key files: `--key-dir`, or `keys` under the data directory of the
/// private cluster. With DATABASE_URL there is no data directory the keys belong to, so the
/// place must be given: a guess relative to wherever the command happens to run would create
/// a second set of keys.
fn key_dir(site: &Site) -> anyhow::Result<PathBuf> {
    let dir = match (&site.key_dir, &site.database_url) {
        (Some(dir), _) => dir.clone(),
        (None, None) => site.data_dir.join("keys"),
        (None, Some(_)) => anyhow::bail!(
            "with DATABASE_URL, say where this ledger's key files are kept: --key-dir DIR or \
             FUNDLEDGER_KEY_DIR (fundledger does not guess a place for the keys of a database \
             it does not keep itself)"
        ),
    };
    Ok(std::path::absolute(&dir)?)
}

/// Where the key files are looked for (and, for a new ledger, created).
struct KeyPaths {
    personal: PathBuf,
    checkpoint: PathBuf,
}

impl KeyPaths {
    fn of(site: &Site) -> anyhow::Result<Self> {
        let file = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        let personal = match file("FUNDLEDGER_KEY_FILE") {
            Some(path) => path,
            None => Keys::default_path(&key_dir(site)?),
        };
        let checkpoint = match file("FUNDLEDGER_CHECKPOINT_KEY_FILE") {
            Some(path) => path,
            None => crate::checkpoints::default_path(&key_dir(site)?),
        };
        Ok(Self { personal, checkpoint })
    }
}

/// The personal-data keys, checked against the database: every command run on the
/// service's side does this first, so a wrong or missing key file stops it before anything.
async fn checked_keys(site: &Site, db: &Database) -> anyhow::Result<Keys> {
    let path = KeyPaths::of(site)?.personal;
    Ok(crate::key_checks::personal(&db.owner, &path).await?)
}

async fn token_command(pool: &sqlx::PgPool, command: TokenCommand) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    match command {
        TokenCommand::Create { role, pool: p, county, label, person } => {
            let (roles, scope) = tokens::parse_roles(&role, p.as_deref(), county.as_deref())?;
            if let Some(code) = p.as_deref().or(county.as_deref()) {
                policy::DivisionCode::parse(code)
                    .map_err(|e| anyhow::anyhow!("--pool/--county: {e}"))?;
            }
            // API.md's synopsis has no --person: without one, the label names the person.
            let person = person.unwrap_or_else(|| label.clone());
            let token = tokens::create(&mut conn, &roles, &scope, &label, &person).await?;
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            println!(
                "created a token for `{}` (person `{}`) with roles {} ({scope:?})",
                label.trim(),
                person.trim(),
                roles.join(",")
            );
            println!("it is shown once; store it like a password:");
            println!("{token}");
        }
        TokenCommand::List => {
            for t in tokens::list(&mut conn).await? {
                let scope = t
                    .pool
                    .map(|p| format!("pool {p}"))
                    .or(t.county.map(|c| format!("county {c}")))
                    .unwrap_or_else(|| "all".into());
                let state =
                    t.revoked_at.map_or_else(|| "active".to_string(), |r| format!("revoked {r}"));
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.label,
                    t.person,
                    t.roles.join(","),
                    scope,
                    state
                );
            }
        }
        TokenCommand::Revoke { id } => {
            tokens::revoke(&mut conn, &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn serve(
    listen: SocketAddr,
    state: AppState,
    stop: &mut StopSignals,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, "fundledger is serving");
    let sequencer = tokio::spawn(run_sequencer(state.pool.clone()));
    let (begin_shutdown, shutdown_begun) = tokio::sync::oneshot::channel::<()>();
    // With a header-read timeout, and live streams told to end at shutdown.
    let server = crate::http::serve(listener, state, async move {
        let _ = shutdown_begun.await;
    });
    let mut server = std::pin::pin!(server);
    let outcome = tokio::select! {
        served = &mut server => served.map_err(anyhow::Error::from),
        reason = stop.recv() => {
            tracing::info!(reason, "shutting down: finishing in-flight requests");
            let _ = begin_shutdown.send(());
            // A live feed reader never ends its request: bound the wait, so the cluster is
            // stopped even then.
            match tokio::time::timeout(grace, &mut server).await {
                Ok(served) => served.map_err(anyhow::Error::from),
                Err(_) => {
                    tracing::warn!(
                        seconds = grace.as_secs(),
                        "requests still open after the grace period; closing them"
                    );
                    Ok(())
                }
            }
        }
    };
    sequencer.abort();
    tracing::info!("in-flight requests finished; shutting down");
    outcome
}

/// Signs the chain's head every `every`, when it has moved.
async fn run_checkpoints(
    pool: sqlx::PgPool,
    key: std::sync::Arc<ed25519_dalek::SigningKey>,
    every: std::time::Duration,
) {
    let mut signed = None;
    loop {
        tokio::time::sleep(every).await;
        let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM log")
            .fetch_one(&pool)
            .await
            .ok()
            .flatten();
        // The checkpoint event itself moves the head by one: only sign when more has happened.
        if head.is_none() || head == signed.map(|s: i64| s + 1) {
            continue;
        }
        match crate::checkpoints::record(&pool, &key, "serve").await {
            Ok(c) => {
                tracing::info!(position = c.position, "signed a checkpoint");
                signed = Some(c.position);
            }
            Err(e) => tracing::warn!(error = %e, "signing a checkpoint failed; retrying later"),
        }
    }
}

/// Keeps the log's positions current for readers that do not sequence themselves (auditors
/// reading the `ledger` view over SQL). Subscriptions sequence on their own as well; when two
/// sequencers meet, one returns at once.
async fn run_sequencer(pool: sqlx::PgPool) {
    let mut failing = false;
    loop {
        match pool.acquire().await {
            Ok(mut conn) => match crate::store::sequence(&mut conn).await {
                Ok(_) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "sequencing the log failed; retrying");
                }
                Err(_) => {}
            },
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "no database connection for the sequencer; retrying");
            }
            Err(_) => {}
        }
        tokio::time::sleep(crate::store::POLL_INTERVAL).await;
    }
}

/// What ends `serve`: Ctrl-C, SIGTERM, SIGHUP (its terminal closed), or the process that
/// started it ending (a script killed before it could stop the server). Left running, an
/// orphaned server would keep its port and its private cluster forever.
///
/// Started under `nohup` (SIGHUP ignored), the operator asked for a server that outlives its
/// terminal and shell: then neither SIGHUP nor the parent's end stops it. A parent that is
/// already init (a service manager, a container) is not watched either.
#[derive(Debug)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: Option<tokio::signal::unix::Signal>,
    parent: Option<u32>,
}

/// How often `serve` checks that the process that started it is still there.
const PARENT_POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl StopSignals {
    fn register() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let detached = sighup_ignored();
        let parent = std::os::unix::process::parent_id();
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: if detached { None } else { Some(signal(SignalKind::hangup())?) },
            parent: (!detached && parent > 1).then_some(parent),
        })
    }

    /// Waits for the first reason to stop and names it.
    async fn recv(&mut self) -> &'static str {
        let hangup = async {
            match &mut self.hangup {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let parent_gone = async {
            let Some(parent) = self.parent else {
                return std::future::pending().await;
            };
            // Without unsafe code there is no PR_SET_PDEATHSIG; an orphan is re-parented (to
            // init or a subreaper), which changes its parent id.
            while std::os::unix::process::parent_id() == parent {
                tokio::time::sleep(PARENT_POLL).await;
            }
        };
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = hangup => "SIGHUP",
            () = parent_gone => "the process that started it ended",
        }
    }
}

/// Whether SIGHUP was ignored when we started (`nohup`), read from /proc (no unsafe libc
/// call); where there is no /proc, it is taken as not ignored.
fn sighup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & 1 != 0) // bit 0 is signal 1, SIGHUP
}

/// `fundledger demo`: the province, recorded with a progress bar, then an admin token.
async fn demo(site: &Site, db: &Database, applications: usize) -> anyhow::Result<()> {
    let paths = KeyPaths::of(site)?;
    let keys = crate::key_checks::personal(&db.owner, &paths.personal).await?;
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PoolRegistered'")
            .fetch_one(&db.pool)
            .await?;
    if registered > 0 {
        anyhow::bail!(
            "this ledger already holds pools: the demo fills an empty ledger only \
             (give another --data-dir, or an empty DATABASE_URL)"
        );
    }
    crate::publishing::publish_shipped_on_empty_log(&db.pool).await?;
    let bar = indicatif::ProgressBar::new(applications as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} 申请 {pos}/{len} [{bar:40}] {per_sec} 预计剩余 {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let summary =
        crate::demo::run(&db.pool, &keys, applications, crate::http::today(), || bar.inc(1))
            .await?;
    bar.finish();
    println!(
        "recorded: {} submitted ({} refused by policy at submission), {} approved, {} rejected, \
         {} notices, {} objections, {} payouts ({} failed, {} reissued), {} recoveries",
        summary.submitted,
        summary.refused_at_submission,
        summary.approved,
        summary.rejected,
        summary.notices,
        summary.objections,
        summary.payouts,
        summary.failed,
        summary.reissued,
        summary.recoveries
    );
    let mut conn = db.pool.acquire().await?;
    let token = tokens::create(
        &mut conn,
        &[tokens::Role::Admin, tokens::Role::Auditor],
        &tokens::Scope::All,
        "demo",
        "demo",
    )
    .await?;
    println!("now run `fundledger serve` (the same --data-dir) and open http://127.0.0.1:8080/");
    println!("sign in with this token (admin and auditor):");
    println!("{token}");
    Ok(())
}
