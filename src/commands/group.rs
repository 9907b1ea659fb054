//! Commands that share a commit (组提交): concurrent commands with the same group key (one
//! pool's approvals) run one after another in ONE transaction, each under its own savepoint,
//! and are made durable by one commit.
//!
//! Why: every approval of a pool takes the pool's quota lock and holds it until its commit, so
//! one-at-a-time approvals are bounded by a commit (a WAL flush) plus the round trips under the
//! lock, per approval. In a group the lock is taken by the first member and re-entered by the
//! others (advisory locks are re-entrant within a transaction), and the group pays for one
//! flush. Each member still reads, decides and appends on its own, seeing what the members
//! before it appended (the same transaction), so the quota check is the same check.
//!
//! How a group forms: the first command with a key opens a group; commands with the same key
//! that arrive while it runs join it (at most [`GROUP_MEMBERS_MAX`]) and wait their seat (the
//! group's connection, first come first seated). When the last member to join has finished, it
//! commits for everyone, and every member learns the outcome before it answers: no member
//! answers before its work is durable.
//!
//! What can go wrong, and what it costs:
//! - A member's refusal or error rolls back only its savepoint; the others are unaffected.
//! - A lock cycle between two groups (a member waiting for a lock another transaction holds
//!   while that one waits for a lock an earlier member of this group took) is broken by
//!   PostgreSQL after `deadlock_timeout`: the member caught ends at once with
//!   [`AppendError::Contended`](crate::store::AppendError::Contended) (503 with Retry-After,
//!   nothing of it recorded) instead of retrying inside the group, where it would meet the
//!   same cycle again. One-at-a-time commands cannot form such cycles (each takes its locks in
//!   one sorted order); groups can, rarely, and this is their price.
//! - A member dropped while seated (its task cancelled or panicking) leaves the transaction in
//!   an unknown state: the group is poisoned and rolled back, and every member ends with
//!   [`GroupError::RolledBack`] (nothing recorded, retry). So is a member dropped while it
//!   waited for its seat (the simple rule: no commit without every member's end). Callers run
//!   members in tasks of their own so a closed HTTP connection does not cancel one.
//! - A commit that fails leaves every member not knowing whether its work is durable:
//!   [`GroupError::CommitUnknown`], as for a single command whose COMMIT was lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{watch, OwnedMutexGuard};

/// Most members one group takes. It bounds how long the first member waits for the commit,
/// and it keeps a group's transaction within PostgreSQL's cache of 64 subtransaction ids per
/// backend (a member writes under its savepoint, and under one more for each command after
/// its first or each retry of a conflict): past it, every other session's snapshot must look
/// subtransactions up in `pg_subtrans`, and the whole server slows (measured when each member
/// wrote under two: batches of 100 in one transaction ran at 0.64 of batches of 30). A held
/// group ([`Groups::hold`]) is bounded by its holder: a batch holds one per 30 items.
pub const GROUP_MEMBERS_MAX: usize = 30;

/// The groups open in this process, by key.
#[derive(Debug)]
pub struct Groups {
    pool: PgPool,
    open: Mutex<HashMap<String, Arc<Group>>>,
    /// Groups that ended (committed or rolled back), and the members they had.
    ended: AtomicU64,
    members: AtomicU64,
}

/// How much sharing happened: `members / groups` is the mean group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    pub groups: u64,
    pub members: u64,
}

#[derive(Debug)]
struct Group {
    /// The group's transaction, begun by the first member seated.
    seat: Arc<tokio::sync::Mutex<Option<Transaction<'static, Postgres>>>>,
    count: Mutex<Count>,
    outcome: watch::Sender<Option<Outcome>>,
}

#[derive(Debug, Default)]
struct Count {
    joined: usize,
    finished: usize,
    /// No member may join: the last one has finished, or the group is full.
    closed: bool,
    /// A member left its work half done: the group rolls back.
    poisoned: bool,
    /// Kept open by a [`Hold`]: takes any number of members.
    held: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Committed,
    RolledBack,
    CommitUnknown,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The group was rolled back (a member was cancelled half way): nothing of any member was
    /// recorded; the same request may be sent again.
    #[error("the commands committed together with this one were rolled back; nothing was recorded, retry")]
    RolledBack,
    /// The group's COMMIT failed on the way (the connection was lost): it may or may not have
    /// reached the database.
    #[error("the commit's outcome is unknown")]
    CommitUnknown,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const MEMBER_SAVEPOINT: &str = "SAVEPOINT fundledger_member";
/// Undoes everything a member did (the savepoint stays, for what the member does next).
pub(crate) const MEMBER_ROLLBACK: &str = "ROLLBACK TO SAVEPOINT fundledger_member";

impl Groups {
    pub fn new(pool: PgPool) -> Arc<Self> {
        Arc::new(Groups {
            pool,
            open: Mutex::new(HashMap::new()),
            ended: AtomicU64::new(0),
            members: AtomicU64::new(0),
        })
    }

    /// The groups ended so far in this process, and their members.
    pub fn stats(&self) -> GroupStats {
        GroupStats {
            groups: self.ended.load(Ordering::Relaxed),
            members: self.members.load(Ordering::Relaxed),
        }
    }

    /// Joins the open group of `key` (or opens one) and waits for this member's seat: the
    /// group's transaction, with a savepoint of this member's own open.
    pub async fn seat(self: &Arc<Self>, key: &str) -> Result<Seat, GroupError> {
        let group = self.join(key, false);
        // In a held group, the holder learns the outcome for every member.
        let waits = !group.count.lock().expect("not poisoned").held;
        let (groups, key) = (self.clone(), key.to_string());
        let mut seat = Seat { groups, key, group, guard: None, done: false, waits };
        let mut guard = seat.group.seat.clone().lock_owned().await;
        if seat.group.count.lock().expect("not poisoned").poisoned {
            seat.guard = Some(guard);
            seat.finish();
            return Err(GroupError::RolledBack);
        }
        let begun = async {
            if guard.is_none() {
                *guard = Some(self.pool.begin().await?);
            }
            let tx = guard.as_mut().expect("begun");
            sqlx::query(MEMBER_SAVEPOINT).execute(&mut **tx).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        seat.guard = Some(guard);
        if let Err(e) = begun {
            // Nothing of this member ran; the group goes on without it (a failed BEGIN left
            // no transaction; a failed SAVEPOINT on a live connection poisons nothing the
            // others did, but the connection's state is unknown: roll the group back).
            let began = seat.guard.as_ref().is_some_and(|g| g.is_some());
            if began {
                seat.group.count.lock().expect("not poisoned").poisoned = true;
            }
            seat.finish();
            return Err(e.into());
        }
        Ok(seat)
    }

    /// Opens a group under `key` (a key of its own, such as a batch's) and keeps it open
    /// until [`Hold::release`]: the commands run under the key in the meantime, one after
    /// another, all share its commit, however far apart they come.
    pub fn hold(self: &Arc<Self>, key: &str) -> Hold {
        let group = self.join(key, true);
        let (groups, key) = (self.clone(), key.to_string());
        Hold(Seat { groups, key, group, guard: None, done: false, waits: true })
    }

    /// Joins the open group of `key`, or opens one (always, for a holder).
    fn join(&self, key: &str, hold: bool) -> Arc<Group> {
        let mut open = self.open.lock().expect("not poisoned");
        if let Some(group) = open.get(key).filter(|_| !hold) {
            let mut count = group.count.lock().expect("not poisoned");
            if !count.closed {
                count.joined += 1;
                if count.joined == GROUP_MEMBERS_MAX && !count.held {
                    count.closed = true;
                }
                return group.clone();
            }
        }
        let group = Arc::new(Group {
            seat: Arc::new(tokio::sync::Mutex::new(None)),
            count: Mutex::new(Count { joined: 1, held: hold, ..Count::default() }),
            outcome: watch::channel(None).0,
        });
        open.insert(key.to_string(), group.clone());
        group
    }
}

/// A member's turn on its group's transaction. End it with [`Seat::keep`] or
/// [`Seat::discard`]; dropped otherwise, it rolls the whole group back.
#[derive(Debug)]
pub struct Seat {
    groups: Arc<Groups>,
    key: String,
    group: Arc<Group>,
    guard: Option<OwnedMutexGuard<Option<Transaction<'static, Postgres>>>>,
    done: bool,
    /// Whether ending waits for the group's outcome (not in a held group: its holder waits).
    waits: bool,
}

impl Seat {
    /// The group's connection, inside this member's savepoint.
    pub fn conn(&mut self) -> &mut PgConnection {
        let tx = self.guard.as_mut().and_then(|g| g.as_mut()).expect("a seated member");
        tx
    }

    /// Keeps this member's work (releases its savepoint) and waits until the group has
    /// committed it (in a held group, the holder waits instead: [`Hold::release`]).
    pub async fn keep(mut self) -> Result<(), GroupError> {
        let released =
            sqlx::query("RELEASE SAVEPOINT fundledger_member").execute(self.conn()).await;
        if let Err(e) = released {
            self.group.count.lock().expect("not poisoned").poisoned = true;
            self.end().await?;
            return Err(e.into());
        }
        self.end().await
    }

    /// Undoes this member's work (rolls back to its savepoint); the group goes on without it.
    /// Waits for the group's outcome all the same, so a caller that retries sees what the
    /// group committed.
    pub async fn discard(mut self) -> Result<(), GroupError> {
        let undone = sqlx::query(MEMBER_ROLLBACK).execute(self.conn()).await;
        if undone.is_err() {
            self.group.count.lock().expect("not poisoned").poisoned = true;
        }
        match self.end().await {
            // This member's work is undone whatever the others' fate.
            Ok(()) | Err(GroupError::RolledBack) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Counts this member finished; the last one commits (or rolls back) for the group.
    /// Then waits for the outcome.
    async fn end(&mut self) -> Result<(), GroupError> {
        let mut outcome = self.group.outcome.subscribe();
        if let Some(tx) = self.finish() {
            self.commit(tx).await;
        }
        if !self.waits {
            return Ok(());
        }
        let o = loop {
            if let Some(o) = *outcome.borrow_and_update() {
                break o;
            }
            if outcome.changed().await.is_err() {
                break Outcome::RolledBack;
            }
        };
        match o {
            Outcome::Committed => Ok(()),
            Outcome::RolledBack => Err(GroupError::RolledBack),
            Outcome::CommitUnknown => Err(GroupError::CommitUnknown),
        }
    }

    /// Commits for the group and publishes the outcome.
    async fn commit(&self, tx: Transaction<'static, Postgres>) {
        let result = tx.commit().await;
        let o = if result.is_ok() { Outcome::Committed } else { Outcome::CommitUnknown };
        if let Err(e) = result {
            tracing::error!(error = %e, "a group's commit did not complete cleanly");
        }
        self.group.outcome.send_replace(Some(o));
    }

    /// Marks this member finished and gives up its seat. For the last member of the group,
    /// returns the transaction to commit; a poisoned group is rolled back here at once and
    /// its outcome published.
    fn finish(&mut self) -> Option<Transaction<'static, Postgres>> {
        if self.done {
            return None;
        }
        self.done = true;
        let last_poisoned = {
            let mut open = self.groups.open.lock().expect("not poisoned");
            let mut count = self.group.count.lock().expect("not poisoned");
            count.finished += 1;
            let last = count.finished == count.joined;
            if last {
                count.closed = true;
                self.groups.ended.fetch_add(1, Ordering::Relaxed);
                self.groups.members.fetch_add(count.joined as u64, Ordering::Relaxed);
                if open.get(&self.key).is_some_and(|g| Arc::ptr_eq(g, &self.group)) {
                    open.remove(&self.key);
                }
            }
            last.then_some(count.poisoned)
        };
        let Some(poisoned) = last_poisoned else {
            self.guard = None;
            return None;
        };
        // Every other member has finished and given up its seat, so a member ending without
        // one (cancelled while it waited) finds the seat free.
        let mut guard = match self.guard.take() {
            Some(guard) => guard,
            None => self.group.seat.clone().try_lock_owned().expect("every other member finished"),
        };
        match (poisoned, guard.take()) {
            (false, Some(tx)) => Some(tx),
            // No member began: nothing to commit.
            (false, None) => {
                self.group.outcome.send_replace(Some(Outcome::Committed));
                None
            }
            (true, tx) => {
                // Dropping the transaction rolls it back (sqlx queues the ROLLBACK).
                drop(tx);
                self.group.outcome.send_replace(Some(Outcome::RolledBack));
                None
            }
        }
    }
}

impl Drop for Seat {
    /// A member dropped before it ended (cancelled, or panicking) may have left a statement
    /// half run in the group's transaction: the group is rolled back (also for a member that
    /// was still waiting for its seat).
    fn drop(&mut self) {
        if !self.done {
            self.group.count.lock().expect("not poisoned").poisoned = true;
            let rolled_back = self.finish();
            debug_assert!(rolled_back.is_none(), "a poisoned group is not committed");
        }
    }
}

/// A group kept open by its holder ([`Groups::hold`]). Dropped without
/// [`Hold::release`], it rolls the group back.
#[derive(Debug)]
pub struct Hold(Seat);

impl Hold {
    /// Lets the group commit (when its last member has ended) and waits for the outcome: the
    /// outcome of every member, which did not wait for it.
    pub async fn release(mut self) -> Result<(), GroupError> {
        self.0.end().await
    }
}
