//! Why an application is refused: a stable code, the request field it
//! concerns, and a sentence a clerk can act on.
//!
//! Precedence. A decision may find several reasons; they are returned sorted
//! by [`RejectionCode`] in declaration order (then in the order the checks
//! ran, which is fixed), so the same input always yields the same first
//! reason. The order goes from the request itself to the applicant's
//! situation, and from lasting reasons to passing ones, so that a clerk is
//! never told "wait for next year" about an application that would fail
//! anyway:
//!
//! 1. `validation_failed` — the request is malformed or inconsistent.
//! 2. `no_policy_in_force` — no published policy covers the date and place.
//! 3. `unknown_occupation` — not in the catalog the policy pays for.
//! 4. `no_standard_for_level` — the policy sets no amount for this level.
//! 5. `not_eligible` — the applicant does not meet the conditions.
//! 6. `certificate_window_expired` — applied too late after the issue date.
//! 7. `occupation_level_already_subsidized` — this occupation and level, ever.
//! 8. `higher_level_already_subsidized` — a higher level of it, ever.
//! 9. `training_and_skill_upgrade_exclusive` — the other subsidy, same
//!    occupation and level.
//! 10. `annual_limit_reached` — no slot left this year (frees up next year,
//!     or when an earlier application is withdrawn or rejected).
//! 11. `quota_exceeded` — the pool's expansion quota (at approval).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable machine-readable reasons, declared in precedence order (first is
/// reported first). The strings are part of the HTTP contract: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    ValidationFailed,
    NoPolicyInForce,
    UnknownOccupation,
    NoStandardForLevel,
    NotEligible,
    CertificateWindowExpired,
    OccupationLevelAlreadySubsidized,
    HigherLevelAlreadySubsidized,
    TrainingAndSkillUpgradeExclusive,
    AnnualLimitReached,
    QuotaExceeded,
}

impl RejectionCode {
    pub const ALL: [RejectionCode; 11] = [
        RejectionCode::ValidationFailed,
        RejectionCode::NoPolicyInForce,
        RejectionCode::UnknownOccupation,
        RejectionCode::NoStandardForLevel,
        RejectionCode::NotEligible,
        RejectionCode::CertificateWindowExpired,
        RejectionCode::OccupationLevelAlreadySubsidized,
        RejectionCode::HigherLevelAlreadySubsidized,
        RejectionCode::TrainingAndSkillUpgradeExclusive,
        RejectionCode::AnnualLimitReached,
        RejectionCode::QuotaExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::ValidationFailed => "validation_failed",
            RejectionCode::NoPolicyInForce => "no_policy_in_force",
            RejectionCode::UnknownOccupation => "unknown_occupation",
            RejectionCode::NoStandardForLevel => "no_standard_for_level",
            RejectionCode::NotEligible => "not_eligible",
            RejectionCode::CertificateWindowExpired => "certificate_window_expired",
            RejectionCode::OccupationLevelAlreadySubsidized => {
                "occupation_level_already_subsidized"
            }
            RejectionCode::HigherLevelAlreadySubsidized => "higher_level_already_subsidized",
            RejectionCode::TrainingAndSkillUpgradeExclusive => {
                "training_and_skill_upgrade_exclusive"
            }
            RejectionCode::AnnualLimitReached => "annual_limit_reached",
            RejectionCode::QuotaExceeded => "quota_exceeded",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason for refusing an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub code: RejectionCode,
    /// JSON path of the request body field concerned, e.g.
    /// `certificate.issued_on`; `""` when it is the request as a whole.
    pub field: String,
    /// What is wrong and what would make it right.
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectionCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection { code, field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.field, self.message)
    }
}

/// Sorts by precedence, keeping the order of discovery within a code (the
/// sort is stable).
pub fn by_precedence(mut rejections: Vec<Rejection>) -> Vec<Rejection> {
    rejections.sort_by_key(|r| r.code);
    rejections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_stable_strings_in_precedence_order() {
        for code in RejectionCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert!(RejectionCode::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn sorting_puts_the_highest_precedence_first_and_is_stable() {
        let r = |code, field: &str| Rejection::new(code, field, "");
        let sorted = by_precedence(vec![
            r(RejectionCode::AnnualLimitReached, "a"),
            r(RejectionCode::NotEligible, "b"),
            r(RejectionCode::ValidationFailed, "c"),
            r(RejectionCode::NotEligible, "d"),
        ]);
        let fields: Vec<_> = sorted.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(fields, ["c", "b", "d", "a"]);
    }
}
