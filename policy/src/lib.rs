//! Policies of the notices as data, and pure decisions over them.
//!
//! This crate does no I/O: policy and catalog files are parsed from `&str`
//! (callers read the files), and every decision is a pure function of the
//! application, the applicant's history and the policy in force.
//!
//! Code map:
//! - [`ids`], [`level`], [`money`]: types that cannot hold a bad value
//!   (parse, don't validate); [`dates`]: dates in files, month arithmetic.
//! - [`policy`]: the policy file schema, loading and validation;
//!   [`catalog`]: the occupation catalogs a policy refers to;
//!   [`classification`]: the national occupational classification codes are checked
//!   against; [`calendar`]: the State Council's holiday calendar (working days).
//! - [`select`]: which policy is in force for a program, pool and date.
//! - [`skill_upgrade`], [`training`], [`job_stabilization`],
//!   [`on_the_job_training`], [`pilot_subsidy`], [`quota`]: one module per program.
//! - [`decision`], [`rejection`], [`history`], [`person`]: what decisions
//!   return and read; `checks`: the checks several programs share.
//! - [`file_error`]: errors in policy and catalog files with line and field.
//!
//! Architecture invariant: nothing here knows about HTTP, the event store or
//! the database; the ledger builds the inputs from its projections and records
//! the outputs as events.

pub mod calendar;
pub mod catalog;
mod checks;
pub mod classification;
pub mod dates;
pub mod decision;
pub mod file_error;
pub mod history;
pub mod ids;
pub mod job_stabilization;
pub mod level;
pub mod money;
pub mod on_the_job_training;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod person;
pub mod pilot_subsidy;
pub mod policy;
pub mod quota;
pub mod rejection;
pub mod select;
mod serde_str;
pub mod skill_upgrade;
pub mod training;

pub use catalog::{Catalog, CatalogItem, CatalogKind};
pub use checks::Exclusion;
pub use decision::{Decision, Funding, Line, Payee, PolicyRef, RuleId, Ruled, Slot, SlotKind};
pub use file_error::PolicyFileError;
pub use history::{PriorApplication, Status, Subject};
pub use ids::{
    mask_name, CreditCode, DivisionCode, IdNumber, OccupationCode, ParseError, PolicyId,
};
pub use level::Level;
pub use money::{Amount, Money, Ratio, Rounding};
pub use person::{Applicant, PersonEligibility};
pub use policy::{Policy, Program, Rules};
pub use quota::quota_cap;
pub use rejection::{Rejection, RejectionCode};
pub use select::select;
