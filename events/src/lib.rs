//! The stored format of the fundledger log: what an event row holds besides its payload.
//!
//! Events are a stored format, not an API: every type here is written once and read back for
//! as long as the ledger exists, so changes are additive and versioned. This crate does no I/O.

pub mod application;
pub mod batch;
pub mod checkpoint;
pub mod metadata;
pub mod period;
pub mod person;
pub mod setup;
pub mod tag;

pub use metadata::Metadata;
pub use tag::{Tag, TagError};

/// A domain event: its payload is the row's `data`, its name and version the row's
/// `event_type` and `schema_version`. A payload that changes shape gets a new version and an
/// upcast from the old one; stored rows are never rewritten.
pub trait DomainEvent: serde::Serialize + serde::de::DeserializeOwned {
    const TYPE: &'static str;
    const VERSION: i32;
}
