//! The event store: the append-only log on PostgreSQL.
//!
//! - [`append`] writes events atomically with per-stream expected versions and a condition
//!   across streams (no event with these tags since the decision's read), locking only the
//!   streams and tags involved.
//! - [`sequence`] gives committed events their global, gapless, commit-ordered position.
//! - [`read_stream`] (and [`read_streams`], several in one round trip), [`read_all`] and
//!   [`read_tagged`] read in order.
//! - [`Subscription`] follows the log live and never skips a committed event.
//!
//! Every function takes the connection or transaction it works in: the command handler owns
//! the transaction, so its reads, its inline projections and its append commit together.

mod append;
mod read;
mod subscription;

pub use append::{
    append, append_with, lock_read, lock_tags, Append, AppendCondition, AppendError, Appended,
    ExpectedVersion, LockedRead, NewEvent, APPEND_PARAMS, APPEND_SQL,
};
pub(crate) use append::{classify, tag_lock_keys};
pub use read::{
    head, read_all, read_point, read_stream, read_streams, read_tagged, sequence, RecordedEvent,
    TaggedRead, READ_PAGE_LIMIT_MAX,
};
pub use subscription::{read_after, LiveHead, Subscription, NOTIFY_CHANNEL, POLL_INTERVAL};

use std::fmt;

/// A place in the global order of the log. Position 0 is "before the first event".
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Position(pub i64);

impl Position {
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The state of the log a decision read, for its [`AppendCondition`]: the PostgreSQL snapshot
/// (`pg_snapshot` text form) its read ran under. An event is "after" it when its transaction
/// was not visible to that snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPoint(pub String);
