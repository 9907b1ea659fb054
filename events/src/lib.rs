//! The stored format of the fundledger log: what an event row holds besides its payload.
//!
//! Events are a stored format, not an API: every type here is written once and read back for
//! as long as the ledger exists, so changes are additive and versioned. This crate does no I/O.

pub mod metadata;
pub mod tag;

pub use metadata::Metadata;
pub use tag::{Tag, TagError};
