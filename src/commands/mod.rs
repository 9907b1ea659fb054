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

use sqlx::{Postgres, Transaction};

use crate::store::{append, Append, AppendError};

/// The last step of every command: appends, brings the inline read models up to date and
/// commits, all in the command's transaction. `Ok(false)` is a conflict: the command reads
/// again, decides again and calls this again. One place, so no command can append without
/// keeping the read models in step.
pub(crate) async fn commit(
    mut tx: Transaction<'_, Postgres>,
    appending: &Append,
) -> Result<bool, AppendError> {
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
