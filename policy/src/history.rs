//! A person's earlier applications, as plain data the ledger builds from its
//! projections.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decision::Slot;
use crate::ids::{OccupationCode, ParseError};
use crate::level::Level;
use crate::policy::Program;

/// Where an earlier application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Submitted, not yet decided.
    Pending,
    /// Approved (in notice, cleared or awaiting payout): counts.
    Counted,
    /// Paid out.
    Paid,
    Rejected,
    Withdrawn,
    /// Paid and then recovered (追回): frees its slot (DOMAIN.md: "it frees
    /// quota and the annual slot only when recovered").
    Recovered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Counted => "counted",
            Status::Paid => "paid",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
            Status::Recovered => "recovered",
        }
    }

    /// Whether the application still stands: it blocks a repeat for the same
    /// occupation and level, and (pending ones subject to the policy's
    /// `pending_holds_slot`) holds an annual slot.
    pub fn stands(self) -> bool {
        matches!(self, Status::Pending | Status::Counted | Status::Paid)
    }
}

/// What a subsidy was for: an occupation by its national code, or a catalog
/// item that has no code (专项职业能力, 特色, 创业 training), by its catalog key
/// such as `special_ability-03`. Carried as one string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Occupation(OccupationCode),
    Item(String),
}

impl Subject {
    /// An occupation code if it looks like one, otherwise a catalog key of
    /// the form `<catalog>-<nn>`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if let Ok(code) = OccupationCode::parse(s) {
            return Ok(Subject::Occupation(code));
        }
        let is_item = s.rsplit_once('-').is_some_and(|(catalog, seq)| {
            !catalog.is_empty()
                && catalog.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && seq.len() >= 2
                && seq.bytes().all(|b| b.is_ascii_digit())
        });
        if is_item {
            Ok(Subject::Item(s.to_string()))
        } else {
            Err(ParseError::new(
                "subject",
                format!("must be an occupation code N-NN-NN-NN or a catalog key like special_ability-03; got {s:?}"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Subject::Occupation(code) => code.as_str(),
            Subject::Item(key) => key,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Subject::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One of the person's earlier skill-upgrade or training applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorApplication {
    pub program: Program,
    pub subject: Subject,
    /// `None` for training items without levels.
    pub level: Option<Level>,
    pub submitted_on: NaiveDate,
    pub status: Status,
    /// The slot its decision assigned, if any. Informational: slots are
    /// counted afresh in submission order (see `skill_upgrade`).
    #[serde(default)]
    pub slot: Option<Slot>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_codes_or_catalog_keys() {
        assert!(matches!(Subject::parse("6-18-02-04"), Ok(Subject::Occupation(_))));
        assert!(matches!(Subject::parse("special_ability-03"), Ok(Subject::Item(_))));
        for bad in ["", "6-18-02", "featured", "Featured-01", "featured-1"] {
            assert!(Subject::parse(bad).is_err(), "{bad}");
        }
        let s: Subject = serde_json::from_str("\"featured-02\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"featured-02\"");
    }

    #[test]
    fn only_standing_applications_block() {
        let standing: Vec<_> = [
            Status::Pending,
            Status::Counted,
            Status::Paid,
            Status::Rejected,
            Status::Withdrawn,
            Status::Recovered,
        ]
        .into_iter()
        .filter(|s| s.stands())
        .collect();
        assert_eq!(standing, [Status::Pending, Status::Counted, Status::Paid]);
    }
}
