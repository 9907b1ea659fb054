//! Consistency tags: the names a decision reads under and appends with.
//!
//! A command that reads "the quota of pool 371500 in 2024" appends its events with the
//! condition that no event tagged `pool:371500/year:2024` was appended after what it read.
//! Commands whose tags do not overlap never conflict.

use std::fmt;

/// Longest tag accepted; tags are keys, not documents.
pub const TAG_LEN_MAX: usize = 200;

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("a tag must not be empty")]
    Empty,
    #[error("a tag is at most {TAG_LEN_MAX} bytes long, this one is {0}")]
    TooLong(usize),
    #[error("a tag may hold only printable ASCII without spaces, found {0:?}")]
    BadCharacter(char),
}

impl Tag {
    pub fn parse(s: &str) -> Result<Self, TagError> {
        if s.is_empty() {
            return Err(TagError::Empty);
        }
        if s.len() > TAG_LEN_MAX {
            return Err(TagError::TooLong(s.len()));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(TagError::BadCharacter(c));
        }
        Ok(Self(s.to_string()))
    }

    /// The expansion quota of a pool in a policy year: `pool:371500/year:2024`.
    pub fn pool_year(pool: &str, year: i32) -> Self {
        Self::parse(&format!("pool:{pool}/year:{year}")).expect("pool codes are ASCII digits")
    }

    /// Everything about one person's subsidies, all years: the annual limits and the
    /// once-per-occupation-and-level rules read across years. `person_key` is the keyed hash
    /// of the ID number, never the number itself.
    pub fn person(person_key: &str) -> Self {
        Self::parse(&format!("person:{person_key}")).expect("person keys are hex")
    }

    /// One enterprise's refunds, by unified social credit code.
    pub fn enterprise(credit_code: &str) -> Self {
        Self::parse(&format!("enterprise:{credit_code}")).expect("credit codes are ASCII")
    }

    /// The seal of a pool's month (`seal:371500/2024-11`): carried by `PeriodSealed` alone, so
    /// a posting reads at most one event to learn whether its month is sealed, and conditions
    /// its append on it.
    pub fn period_seal(pool: &str, month: &str) -> Self {
        Self::parse(&format!("seal:{pool}/{month}")).expect("pool codes and months are ASCII")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Tag {
    type Error = TagError;
    fn try_from(s: String) -> Result<Self, TagError> {
        Self::parse(&s)
    }
}

impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_tag_shapes() {
        assert_eq!(Tag::pool_year("371500", 2024).as_str(), "pool:371500/year:2024");
        assert_eq!(Tag::person("ab12").as_str(), "person:ab12");
    }

    #[test]
    fn refuses_empty_long_and_spaced_tags() {
        assert_eq!(Tag::parse(""), Err(TagError::Empty));
        assert_eq!(Tag::parse(&"a".repeat(201)), Err(TagError::TooLong(201)));
        assert_eq!(Tag::parse("pool: 1"), Err(TagError::BadCharacter(' ')));
        assert_eq!(Tag::parse("池:1"), Err(TagError::BadCharacter('池')));
        assert!(Tag::parse(&"a".repeat(200)).is_ok());
    }
}
