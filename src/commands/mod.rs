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
