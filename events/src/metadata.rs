//! Who did what, on whose behalf, in answer to which request: stored beside every event.

use serde::{Deserialize, Serialize};

/// Metadata of one event. Every field is optional in the stored format so that old rows keep
/// deserialising when fields are added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The label of the token (a person) that issued the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The id of the API token the command came with (absent for the CLI and older events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The person that token stands for (`token create --person`): what maker-checker
    /// compares. Labels are free text and may repeat; persons identify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Fund pool (统筹地区) the event concerns, a 6-digit division code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// County (县/市/区) the event concerns, a 6-digit division code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The event or command that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Shared by every event of one business conversation (e.g. one application's life).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omits_absent_fields_and_reads_them_back() {
        let m = Metadata {
            actor: Some("县经办 王五".into()),
            pool: Some("370800".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"actor":"县经办 王五","pool":"370800"}"#);
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), m);
        assert_eq!(serde_json::from_str::<Metadata>("{}").unwrap(), Metadata::default());
    }

    #[test]
    fn refuses_unknown_fields() {
        assert!(serde_json::from_str::<Metadata>(r#"{"actr":"x"}"#).is_err());
    }
}
