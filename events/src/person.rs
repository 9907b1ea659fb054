//! Events about a person as such (stream `person-<person key>`, tagged `person:<key>`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// A person's personal data was erased (个人信息删除, PIPL art. 47): the data key their ID
/// number, name, certificate numbers and bank accounts were sealed under was destroyed, so
/// those values no longer open anywhere, while every event, hash and amount stays as it was.
/// It names only the person key and the day; who erased it is in the metadata. It covers the
/// values recorded before it: a person seen again afterwards is sealed under a new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonErased {
    /// The person key (HMAC of the ID number), kept: see README "Erasure".
    pub person: String,
    pub erased_on: NaiveDate,
}

impl DomainEvent for PersonErased {
    const TYPE: &'static str = "PersonErased";
    const VERSION: i32 = 1;
}

/// The stream of a person's erasures.
pub fn person_stream(person: &str) -> String {
    format!("person-{person}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erasure_is_stored_as_the_person_key_and_the_day_only() {
        let e = PersonErased {
            person: "ab".repeat(32),
            erased_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, format!(r#"{{"person":"{}","erased_on":"2025-03-01"}}"#, "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<PersonErased>(&text).unwrap(), e);
        assert!(serde_json::from_str::<PersonErased>(
            r#"{"person":"x","erased_on":"2025-03-01","name":"张三"}"#
        )
        .is_err());
    }
}
