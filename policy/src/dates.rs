//! Dates in policy files and month arithmetic.
//!
//! Policy files may write a date as a TOML date (`effective_from = 2024-01-01`)
//! or as a string (`"2024-01-01"`); JSON (events) always carries the string.
//! Only a plain local date is accepted: a time or an offset in a business date
//! would be a mistake.

use std::fmt;

use chrono::{Months, NaiveDate};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserializer, Serializer};

const FORMAT: &str = "%Y-%m-%d";

fn parse<E: de::Error>(s: &str) -> Result<NaiveDate, E> {
    let ok = s.len() == 10;
    NaiveDate::parse_from_str(s, FORMAT)
        .ok()
        .filter(|_| ok)
        .ok_or_else(|| E::custom(format!("must be a date YYYY-MM-DD, got {s:?}")))
}

struct DateVisitor;

impl<'de> Visitor<'de> for DateVisitor {
    type Value = NaiveDate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date YYYY-MM-DD")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NaiveDate, E> {
        parse(v)
    }

    /// A TOML date arrives as a one-entry map holding its text.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NaiveDate, A::Error> {
        let Some((_, text)) = map.next_entry::<String, String>()? else {
            return Err(de::Error::custom("must be a date YYYY-MM-DD"));
        };
        parse(&text)
    }
}

pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&date.format(FORMAT))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    deserializer.deserialize_any(DateVisitor)
}

/// The same for `Option<NaiveDate>`; use with `#[serde(default)]`.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        date: &Option<NaiveDate>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match date {
            Some(d) => serializer.serialize_some(&d.format(FORMAT).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDate>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

/// `date` plus `months` calendar months, clamped to the end of a shorter
/// month (2024-02-29 + 12 months = 2025-02-28), as a person counts "within
/// 12 months of the issue date".
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months)).unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_added_by_the_calendar() {
        let d = |s: &str| NaiveDate::parse_from_str(s, FORMAT).unwrap();
        assert_eq!(add_months(d("2024-03-01"), 12), d("2025-03-01"));
        assert_eq!(add_months(d("2024-02-29"), 12), d("2025-02-28"));
        assert_eq!(add_months(d("2024-08-31"), 1), d("2024-09-30"));
    }

    #[test]
    fn only_plain_dates_are_accepted() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[serde(with = "super")]
            d: NaiveDate,
        }
        let t: T = toml::from_str("d = 2024-01-01").unwrap();
        assert_eq!(t.d, NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        let t: T = toml::from_str("d = \"2024-12-31\"").unwrap();
        assert_eq!(t.d, NaiveDate::from_ymd_opt(2024, 12, 31).unwrap());
        for bad in
            ["d = 2024-01-01T00:00:00", "d = \"2024-1-1\"", "d = \"2024-02-30\"", "d = 20240101"]
        {
            assert!(toml::from_str::<T>(bad).is_err(), "{bad}");
        }
        let t: T = serde_json::from_str("{\"d\":\"2024-09-01\"}").unwrap();
        assert_eq!(t.d, NaiveDate::from_ymd_opt(2024, 9, 1).unwrap());
    }
}
