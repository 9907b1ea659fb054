//! Policies as data and pure decisions.
