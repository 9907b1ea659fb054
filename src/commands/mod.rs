//! Commands: read the state a decision needs, decide (pure), append with the condition that
//! the state has not changed, commit. One command, one transaction; [`execute`] runs every
//! command and retries a conflict inside, a bounded number of times, so a client never sees
//! a conflict for a request that could have succeeded.

pub mod applications;
pub mod batches;
pub mod group;
pub mod payouts;
pub mod periods;
pub mod persons;
pub mod settlements;
pub mod setup;
pub mod together;

/// Attempts per command before a conflict is reported as such (a hot aggregate under heavy
/// contention; each attempt re-reads).
pub const COMMAND_ATTEMPTS_MAX: usize = 16;

use std::collections::BTreeMap;

use events::Tag;
use projections::tables::Changes;
use projections::ReadModels;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::personal::data_keys::{DataKeyRow, NewDataKey};
use crate::personal::{DataKeys, Keys};
use crate::store::{Append, AppendError, LockedRead, RecordedEvent, TaggedRead};

/// An error a command can end in: it carries the store's and the database's errors, and
/// knows which of them another attempt may cure.
pub(crate) trait CommandError: From<AppendError> + From<sqlx::Error> {
    /// The store's error this one carries, if any.
    fn store(&self) -> Option<&AppendError>;

    /// A conflict with a concurrent writer: read again, decide again.
    fn is_conflict(&self) -> bool {
        self.store().is_some_and(AppendError::is_conflict)
    }
}

/// One attempt of a command: its transaction (or savepoint) and every event it read, which
/// is the state its changes to the read models start from.
#[derive(Debug)]
pub(crate) struct Attempt<'t> {
    pub(crate) tx: AttemptTx<'t>,
    read: BTreeMap<i64, RecordedEvent>,
    issuer: Option<Issuer>,
    /// Persons' data keys made by this attempt, recorded with its events.
    new_data_keys: Vec<NewDataKey>,
    /// The attempt runs in a group's transaction ([`group`]).
    grouped: bool,
}

/// Where an attempt's statements go.
#[derive(Debug)]
pub(crate) enum AttemptTx<'t> {
    /// A transaction of its own, or a savepoint in the caller's: committed (released) when the
    /// attempt succeeds, rolled back when it is dropped.
    Own(Transaction<'t, Postgres>),
    /// The caller's transaction itself, in which nothing had been done before ([`Db::unit`]),
    /// or a group member's savepoint, in which nothing had been done before
    /// ([`Db::in_group`]): no savepoint round trips of the attempt's own; the caller commits.
    /// A conflict or a refusal undoes it with the statement given (`ROLLBACK AND CHAIN`, or
    /// `ROLLBACK TO SAVEPOINT` the member's), one round trip.
    Caller(&'t mut PgConnection, &'static str),
}

impl std::ops::Deref for AttemptTx<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            AttemptTx::Own(tx) => tx,
            AttemptTx::Caller(conn, _) => conn,
        }
    }
}

impl std::ops::DerefMut for AttemptTx<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            AttemptTx::Own(tx) => tx,
            AttemptTx::Caller(conn, _) => conn,
        }
    }
}

impl AttemptTx<'_> {
    /// The attempt succeeded: its transaction commits, its savepoint is released; the
    /// caller's transaction is the caller's to commit.
    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            AttemptTx::Own(tx) => tx.commit().await,
            AttemptTx::Caller(..) => Ok(()),
        }
    }

    /// The attempt ends without effect: a transaction or savepoint rolls back as it is
    /// dropped; the caller's transaction is rolled back and begun again, or rolled back to the
    /// member's savepoint.
    async fn undo(self) -> Result<(), sqlx::Error> {
        match self {
            AttemptTx::Own(_) => Ok(()),
            AttemptTx::Caller(conn, undo) => sqlx::query(undo).execute(conn).await.map(|_| ()),
        }
    }
}

impl<'t> Attempt<'t> {
    pub(crate) async fn begin(db: &'t mut Db<'_>) -> Result<Self, sqlx::Error> {
        let (issuer, grouped) = (db.issuer.clone(), db.grouped);
        Ok(Attempt {
            tx: db.begin().await?,
            read: BTreeMap::new(),
            issuer,
            new_data_keys: Vec::new(),
            grouped,
        })
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Ends the attempt without effect ([`AttemptTx::undo`]).
    pub(crate) async fn undo(self) -> Result<(), sqlx::Error> {
        self.tx.undo().await
    }

    /// Records events read some other way (the same event read twice counts once).
    pub(crate) fn saw(&mut self, events: &[RecordedEvent]) {
        for e in events {
            self.read.entry(e.id).or_insert_with(|| e.clone());
        }
    }

    pub(crate) async fn read_stream(
        &mut self,
        stream: &str,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let events = crate::store::read_stream(&mut self.tx, stream).await?;
        self.saw(&events);
        Ok(events)
    }

    /// Several streams in one round trip ([`crate::store::read_streams`]).
    pub(crate) async fn read_streams(
        &mut self,
        streams: &[&str],
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let events = crate::store::read_streams(&mut self.tx, streams).await?;
        self.saw(&events);
        Ok(events)
    }

    pub(crate) async fn read_tagged(&mut self, tags: &[Tag]) -> Result<TaggedRead, sqlx::Error> {
        let read = crate::store::read_tagged(&mut self.tx, tags).await?;
        self.saw(&read.events);
        Ok(read)
    }

    /// Takes the locks of `lock` and reads, in one round trip, the events carrying `tags` or in
    /// `streams`, the ids of the events tagged `id_tag` and the latest data key rows of
    /// `persons` ([`crate::store::lock_read`]; [`Attempt::data_keys_from`] makes the keys).
    pub(crate) async fn lock_read(
        &mut self,
        lock: &[Tag],
        tags: &[Tag],
        streams: &[&str],
        id_tag: &str,
        persons: &[&str],
    ) -> Result<LockedRead, AppendError> {
        let read =
            crate::store::lock_read(&mut self.tx, lock, tags, streams, id_tag, persons).await?;
        self.saw(&read.events);
        Ok(read)
    }

    /// The data keys to seal `persons`' values with: each one's live key, or a new one,
    /// recorded with this attempt's events. Read it holding the persons' tag locks, or after
    /// the read point of a condition on their tags: an erasure (which takes the lock and
    /// appends under the tag) then either came first and is seen, or comes after the commit.
    pub(crate) async fn data_keys(
        &mut self,
        keys: &Keys,
        persons: &[&str],
    ) -> Result<DataKeys, AppendError> {
        let rows = crate::personal::data_keys::latest(&mut self.tx, persons).await?;
        self.data_keys_of(keys, persons, &rows)
    }

    /// [`Attempt::data_keys`] from the rows [`Attempt::lock_read`] returned.
    pub(crate) fn data_keys_from(
        &mut self,
        keys: &Keys,
        persons: &[&str],
        read: &LockedRead,
    ) -> Result<DataKeys, AppendError> {
        let rows: Vec<DataKeyRow> = serde_json::from_value(read.data_keys.clone())
            .map_err(|e| AppendError::DataKey(e.to_string()))?;
        self.data_keys_of(keys, persons, &rows)
    }

    fn data_keys_of(
        &mut self,
        keys: &Keys,
        persons: &[&str],
        rows: &[DataKeyRow],
    ) -> Result<DataKeys, AppendError> {
        // A key this attempt already made is a person's live key (the latest generation).
        let made = self.new_data_keys.iter().map(|k| DataKeyRow {
            person_key: k.person_key.clone(),
            generation: k.generation,
            sealed_key: Some(k.sealed_key.clone()),
        });
        let rows: Vec<DataKeyRow> = rows.iter().cloned().chain(made).collect();
        let (data_keys, new) = DataKeys::from_latest(keys, persons, &rows)
            .map_err(|e| AppendError::DataKey(e.to_string()))?;
        self.new_data_keys.extend(new);
        Ok(data_keys)
    }

    /// The folds of what this attempt read, in the order the events were written.
    fn before(&self) -> ReadModels {
        let mut models = ReadModels::default();
        for e in self.read.values() {
            models.apply(&e.event_type, &e.data).expect("a recorded event reads as its schema");
        }
        models
    }
}

/// What an attempt decided: the events to append (none: nothing to record) and what the
/// command answers.
#[derive(Debug)]
pub(crate) struct Decided<T> {
    pub(crate) append: Option<Append>,
    pub(crate) answer: T,
}

impl<T> Decided<T> {
    pub(crate) fn append(append: Append, answer: T) -> Self {
        Decided { append: Some(append), answer }
    }
}

/// The one executor of every command: begin, load and decide (the body, given the
/// [`Attempt`] as `$a`, returning `Result<Decided<T>, $error>`), append, bring the read models
/// up to date, commit. A conflict with a concurrent writer starts a new attempt, at most
/// [`COMMAND_ATTEMPTS_MAX`] times, after which the command ends in [`AppendError::Contended`]
/// (503 with `Retry-After` over HTTP). A refusal returned by the body rolls the attempt back:
/// nothing of it is recorded.
///
/// A macro rather than a function taking a closure: the body borrows the command's arguments
/// and its attempt, and a closure returning such a future cannot be shown `Send` for every
/// lifetime on stable Rust (axum needs handlers' futures `Send`). The macro is only the loop;
/// what the body reads and decides is plain code at the call site.
macro_rules! execute {
    ($db:expr, $error:ty, |$a:ident| $body:block) => {{
        let db: &mut $crate::commands::Db<'_> = $db;
        let mut outcome: Option<Result<_, $error>> = None;
        for _ in 0..$crate::commands::COMMAND_ATTEMPTS_MAX {
            let mut attempt = $crate::commands::Attempt::begin(db).await?;
            let decided: Result<$crate::commands::Decided<_>, $error> = {
                let $a = &mut attempt;
                async { $body }.await
            };
            match $crate::commands::finish(attempt, decided).await {
                $crate::commands::Step::Done(result) => {
                    outcome = Some(result);
                    break;
                }
                $crate::commands::Step::Again => continue,
            }
        }
        db.used();
        outcome.unwrap_or_else(|| Err($crate::store::AppendError::Contended.into()))
    }};
}
pub(crate) use execute;

/// What an attempt came to: an answer (or a refusal), or a conflict to try again.
#[derive(Debug)]
pub(crate) enum Step<T, E> {
    Done(Result<T, E>),
    Again,
}

/// Ends an attempt: commits what it decided (appending and writing the read models), or
/// rolls it back on a refusal or a conflict.
pub(crate) async fn finish<T, E: CommandError>(
    a: Attempt<'_>,
    decided: Result<Decided<T>, E>,
) -> Step<T, E> {
    let grouped = a.grouped;
    let caller = matches!(a.tx, AttemptTx::Caller(..));
    let decided = match decided {
        Ok(d) => d,
        Err(e) => {
            // Nothing of a refused or conflicting attempt stays, not even its locks.
            if let Err(undone) = a.undo().await {
                return Step::Done(Err(E::from(undone)));
            }
            return match e.is_conflict() {
                true => again(grouped, e.store()),
                false => Step::Done(Err(e)),
            };
        }
    };
    let Some(appending) = decided.append else {
        return Step::Done(a.tx.commit().await.map(|()| decided.answer).map_err(E::from));
    };
    match commit(a, &appending, caller).await {
        Ok(()) => Step::Done(Ok(decided.answer)),
        Err(e) if e.is_conflict() => again(grouped, Some(&e)),
        Err(e) => Step::Done(Err(e.into())),
    }
}

/// After a conflict: another attempt, except for a lock cycle met inside a group, which
/// another attempt in the same group would meet again (the locks the members before it took
/// stay held): that command ends at once, contended ([`group`]).
fn again<T, E: CommandError>(grouped: bool, error: Option<&AppendError>) -> Step<T, E> {
    if grouped && matches!(error, Some(AppendError::Deadlock)) {
        return Step::Done(Err(AppendError::Contended.into()));
    }
    Step::Again
}

/// The last step of every command: appends, writes what the appended events change in the
/// read models ([`Changes`], computed from the folds of what the attempt read, with and
/// without the new events) and commits, all in the command's transaction. One place, so no
/// command can append without keeping the read models in step.
async fn commit(mut a: Attempt<'_>, appending: &Append, caller: bool) -> Result<(), AppendError> {
    // Every event a token's command records names the token and its person (one place, so
    // no command can forget it).
    let stamped;
    let appending = match &a.issuer {
        None => appending,
        Some(issuer) => {
            let mut s = appending.clone();
            for e in &mut s.events {
                e.metadata.token_id = Some(issuer.token_id.clone());
                e.metadata.person = Some(issuer.person.clone());
            }
            stamped = s;
            &stamped
        }
    };
    let before = a.before();
    let mut after = before.clone();
    for e in &appending.events {
        after.apply(&e.event_type, &e.data).expect("the command built this event");
    }
    let changes = Changes::between(&before, &after);
    // The append, the read models' changes and the new data keys in one statement (one round
    // trip).
    let appended =
        crate::read_models::append_and_write(&mut a.tx, appending, &changes, &a.new_data_keys)
            .await;
    if let Err(e) = appended {
        // In the caller's transaction a failed statement leaves it aborted: begin it again
        // for the next attempt (a savepoint or a transaction of its own is dropped instead).
        if caller {
            a.tx.undo().await?;
        }
        return Err(e);
    }
    a.tx.commit().await?;
    Ok(())
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
    /// Runs in a group's transaction ([`group`]).
    grouped: bool,
    /// Nothing done yet in the caller's transaction ([`Db::unit`]) or the member's savepoint
    /// ([`Db::in_group`]): the statement that undoes an attempt there.
    fresh: Option<&'static str>,
}

/// The API token a command came with, and the person it stands for: stamped on the metadata of
/// every event the command records, and what maker-checker compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub token_id: String,
    pub person: String,
}

#[derive(Debug)]
enum Target<'a> {
    Pool(&'a PgPool),
    Within(&'a mut PgConnection),
}

impl<'a> From<&'a PgPool> for Db<'a> {
    fn from(pool: &'a PgPool) -> Self {
        let database = pool.connect_options().get_database().unwrap_or("").to_string();
        Db { target: Target::Pool(pool), database, issuer: None, grouped: false, fresh: None }
    }
}

impl<'a> Db<'a> {
    /// Runs the command inside `conn`'s open transaction, as savepoints.
    pub fn within(conn: &'a mut PgConnection, database: &str) -> Self {
        Db {
            target: Target::Within(conn),
            database: database.to_string(),
            issuer: None,
            grouped: false,
            fresh: None,
        }
    }

    /// Runs the command in `conn`'s open transaction, in which nothing has been done yet and
    /// which the caller commits after it (the HTTP layer's unit of work, which records the
    /// Idempotency-Key and the response after the command): the first command's attempts run
    /// in it directly, with no savepoint (two round trips fewer); a conflict or a refusal rolls
    /// the transaction back and begins it again. Commands after the first run as savepoints.
    pub fn unit(conn: &'a mut PgConnection, database: &str) -> Self {
        Db { fresh: Some("ROLLBACK AND CHAIN"), ..Db::within(conn, database) }
    }

    /// A command has run: any next one in the caller's transaction runs as savepoints.
    pub(crate) fn used(&mut self) {
        self.fresh = None;
    }

    /// Runs the command in a group member's seat ([`group::Seat`]), in which nothing has been
    /// done yet: the first command's attempts run in the member's savepoint itself (two round
    /// trips fewer each), a conflict or a refusal rolls back to it; later commands run as
    /// savepoints within it.
    pub fn in_group(seat: &'a mut group::Seat, database: &str) -> Self {
        Db {
            grouped: true,
            fresh: Some(group::MEMBER_ROLLBACK),
            ..Db::within(seat.conn(), database)
        }
    }

    /// Records `issuer` on every event the command appends.
    pub fn issued_by(mut self, issuer: Issuer) -> Self {
        self.issuer = Some(issuer);
        self
    }

    pub(crate) fn issuer(&self) -> Option<&Issuer> {
        self.issuer.as_ref()
    }

    /// Starts one attempt: a transaction, a savepoint within the caller's, or the caller's
    /// own ([`Db::unit`]).
    pub(crate) async fn begin(&mut self) -> Result<AttemptTx<'_>, sqlx::Error> {
        let fresh = self.fresh;
        Ok(match &mut self.target {
            Target::Pool(pool) => AttemptTx::Own(pool.begin().await?),
            Target::Within(conn) => match fresh {
                Some(undo) => AttemptTx::Caller(conn, undo),
                None => AttemptTx::Own(conn.begin().await?),
            },
        })
    }

    pub(crate) fn database(&self) -> &str {
        &self.database
    }
}
