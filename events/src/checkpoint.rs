//! Signed checkpoints of the audit chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// A signed head of the log (签名检查点): the chain's hash at `position`, signed with an
/// Ed25519 key kept outside the database. Someone who rewrites the chain with fresh hashes
/// cannot sign the new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSigned {
    pub position: i64,
    /// Hex SHA-256 of the chain at `position`.
    pub hash: String,
    pub signed_at: DateTime<Utc>,
    /// Hex Ed25519 public key.
    pub public_key: String,
    /// Hex Ed25519 signature over [`CheckpointSigned::message`].
    pub signature: String,
}

impl CheckpointSigned {
    /// The bytes signed: a fixed prefix, the position, the hash and the time, one per line.
    pub fn message(position: i64, hash: &str, signed_at: &DateTime<Utc>) -> String {
        format!(
            "fundledger checkpoint v1\n{position}\n{hash}\n{}",
            signed_at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
    }
}

impl DomainEvent for CheckpointSigned {
    const TYPE: &'static str = "CheckpointSigned";
    const VERSION: i32 = 1;
}
