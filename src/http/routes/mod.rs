//! Handlers, one module per part of API.md.

pub mod applications;
pub mod batch;
pub mod batches;
pub mod desk;
pub mod feed;
pub mod ops;
pub mod payouts;
pub mod persons;
pub mod policies;
pub mod setup;
