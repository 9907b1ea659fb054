//! Skill levels (职业技能等级).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::ParseError;

/// A vocational skill level, 1 to 5. The numbering runs downwards: level 5 is
/// the lowest (初级) and level 1 the highest (高级技师), so `Level` has no
/// `Ord`; ask [`Level::is_higher_than`] instead of comparing numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Level(u8);

impl Level {
    pub const ALL: [Level; 5] = [Level(5), Level(4), Level(3), Level(2), Level(1)];

    /// Parses `"1"` to `"5"`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.as_bytes() {
            [b @ b'1'..=b'5'] => Ok(Level(b - b'0')),
            _ => Err(ParseError::new(
                "level",
                format!("must be 1 to 5 (5 初级, 4 中级, 3 高级, 2 技师, 1 高级技师), got {s:?}"),
            )),
        }
    }

    pub fn from_number(n: u64) -> Result<Self, ParseError> {
        match u8::try_from(n) {
            Ok(n @ 1..=5) => Ok(Level(n)),
            _ => Self::parse(&n.to_string()),
        }
    }

    pub fn number(self) -> u8 {
        self.0
    }

    /// The Chinese name of the level, as on certificates.
    pub fn name_zh(self) -> &'static str {
        match self.0 {
            5 => "初级",
            4 => "中级",
            3 => "高级",
            2 => "技师",
            _ => "高级技师",
        }
    }

    /// Whether this level is above `other` (level 3 高级 is higher than 4 中级).
    pub fn is_higher_than(self, other: Level) -> bool {
        self.0 < other.0
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A level is a JSON number (`"level": 4`), as in the API's request bodies.
impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a level 1 to 5")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Level, E> {
                Level::from_number(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Level, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("level: must be 1 to 5, got {v}")))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        deserializer.deserialize_u64(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_have_their_chinese_names_and_order() {
        let names: Vec<_> = Level::ALL.iter().map(|l| l.name_zh()).collect();
        assert_eq!(names, ["初级", "中级", "高级", "技师", "高级技师"]);
        let l = |s| Level::parse(s).unwrap();
        assert!(l("3").is_higher_than(l("4")));
        assert!(!l("4").is_higher_than(l("3")));
        assert!(!l("4").is_higher_than(l("4")));
        for bad in ["0", "6", "", "12", "五", " 5"] {
            assert!(Level::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels_are_json_numbers() {
        assert_eq!(serde_json::to_string(&Level::parse("4").unwrap()).unwrap(), "4");
        assert_eq!(serde_json::from_str::<Level>("5").unwrap(), Level(5));
        assert!(serde_json::from_str::<Level>("6").is_err());
        assert!(serde_json::from_str::<Level>("-1").is_err());
        assert!(serde_json::from_str::<Level>("\"4\"").is_err());
    }

    proptest! {
        #[test]
        fn valid_levels_print_back_unchanged(s in "[1-5]") {
            prop_assert_eq!(Level::parse(&s).unwrap().to_string(), s);
        }

        #[test]
        fn a_level_replaced_by_any_other_character_is_refused(c in proptest::char::any()) {
            prop_assume!(!('1'..='5').contains(&c));
            prop_assert!(Level::parse(&c.to_string()).is_err());
        }
    }
}
