//! Commands: read the state a decision needs, decide (pure), append with the condition that
//! the state has not changed, commit. One command, one transaction; a conflict is retried
//! inside, a bounded number of times, so a client never sees a conflict for a request that
//! could have succeeded.

pub mod applications;
pub mod payouts;
pub mod setup;

/// Attempts per command before a conflict is reported as such (a hot aggregate under heavy
/// contention; each attempt re-reads).
pub const COMMAND_ATTEMPTS_MAX: usize = 16;

use std::ops::{Deref, DerefMut};

use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::store::{append, Append, AppendError};

/// The last step of every command: appends, brings the inline read models up to date and
/// commits, all in the command's transaction. `Ok(false)` is a conflict: the command reads
/// again, decides again and calls this again. One place, so no command can append without
/// keeping the read models in step.
pub(crate) async fn commit(attempt: Attempt<'_>, appending: &Append) -> Result<bool, AppendError> {
    let Attempt { mut tx, issuer } = attempt;
    // Every event a token's command records names the token and its person (one place, so
    // no command can forget it).
    let stamped;
    let appending = match issuer {
        None => appending,
        Some(issuer) => {
            let mut a = appending.clone();
            for e in &mut a.events {
                e.metadata.token_id = Some(issuer.token_id.clone());
                e.metadata.person = Some(issuer.person.clone());
            }
            stamped = a;
            &stamped
        }
    };
    match append(&mut tx, appending).await {
        Ok(_) => {
            crate::read_models::apply(&mut tx, &appending.events).await?;
            tx.commit().await?;
            Ok(true)
        }
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Where a command runs. On a pool, each attempt is a transaction of its own. Within a
/// caller's transaction (the HTTP layer's unit of work, which records the idempotency key and
/// the response beside the command's events), each attempt is a savepoint, so a conflict rolls
/// back only the attempt and the caller commits everything at once.
#[derive(Debug)]
pub struct Db<'a> {
    target: Target<'a>,
    /// The database's name: the key of per-database caches (published policies).
    database: String,
    issuer: Option<Issuer>,
}

/// The API token a command came with, and the person it stands for: stamped on the metadata of
/// every event the command records, and what maker-checker compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub token_id: String,
    pub person: String,
}

/// One attempt of a command: its transaction (or savepoint), and who issued the command.
/// Derefs to the connection, so the command's queries read as on a transaction.
#[derive(Debug)]
pub(crate) struct Attempt<'c> {
    tx: Transaction<'c, Postgres>,
    issuer: Option<Issuer>,
}

impl Deref for Attempt<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Attempt<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

#[derive(Debug)]
enum Target<'a> {
    Pool(&'a PgPool),
    Within(&'a mut PgConnection),
}

impl<'a> From<&'a PgPool> for Db<'a> {
    fn from(pool: &'a PgPool) -> Self {
        let database = pool.connect_options().get_database().unwrap_or("").to_string();
        Db { target: Target::Pool(pool), database, issuer: None }
    }
}

impl<'a> Db<'a> {
    /// Runs the command inside `conn`'s open transaction, as savepoints.
    pub fn within(conn: &'a mut PgConnection, database: &str) -> Self {
        Db { target: Target::Within(conn), database: database.to_string(), issuer: None }
    }

    /// Records `issuer` on every event the command appends.
    pub fn issued_by(mut self, issuer: Issuer) -> Self {
        self.issuer = Some(issuer);
        self
    }

    pub(crate) fn issuer(&self) -> Option<&Issuer> {
        self.issuer.as_ref()
    }

    /// Starts one attempt: a transaction, or a savepoint within the caller's.
    pub(crate) async fn begin(&mut self) -> Result<Attempt<'_>, sqlx::Error> {
        let tx = match &mut self.target {
            Target::Pool(pool) => pool.begin().await?,
            Target::Within(conn) => conn.begin().await?,
        };
        Ok(Attempt { tx, issuer: self.issuer.clone() })
    }

    pub(crate) fn database(&self) -> &str {
        &self.database
    }
}
