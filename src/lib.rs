//! fundledger: an event-sourced ledger of unemployment-insurance fund payouts.
//!
//! See ARCHITECTURE.md for the map. In short: [`store`] is the append-only log on
//! PostgreSQL, [`postgres`] connects to (or starts) the database, [`http`] serves the API,
//! [`cli`] is the command line.

pub mod audit;
pub mod backup;
pub mod checkpoints;
pub mod cli;
pub mod commands;
mod copy_binary;
pub mod demo;
pub mod erasure;
pub mod flags;
pub mod http;
pub mod key_checks;
pub mod personal;
pub mod postgres;
pub mod publishing;
pub mod read_models;
pub mod rebuild;
pub mod replay;
pub mod reports;
pub mod store;
pub mod tokens;
pub mod web;
